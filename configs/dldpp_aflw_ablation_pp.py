# Table 2 ablation "D-ULD + PP": D-ULD plus the pose-guided proxy task, no
# two-stage clustering and no latent contrastive loss (Eq. 3). After the
# proxy stage, the last stage trains like D-ULD on K-means pseudo-labels
# (detector MSE + descriptor contrastive loss, descriptor head trainable),
# with the D-ULD++ stage's length and learning rate; the VAE is unused and
# frozen there (docs/methods.md, "The + PP ablation").
_base_ = ['./dldpp_aflw.py']
# Every stage trains on K-means pseudo-labels: no stage has
# pseudo_labels='two_stage', so no clustering round computes pose codes.
stages = [
    {{_base_.bootstrap_stage}},
    {{_base_.duld_stage}},
    {{_base_.proxy_stage}},  # the proxy task of D-ULD++, unchanged
    dict(
        name='dldpp',
        iters=100000,
        lr=5e-4,
        frozen=['pose_vae'],
        pseudo_labels='kmeans',
        objective='duld'),
]
model = dict(stages=stages)
