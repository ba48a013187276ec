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
    dict(
        name='bootstrap',
        iters=50000,
        lr=1e-4,
        frozen=['pose_vae'],
        pseudo_labels=None),
    dict(
        name='duld',
        iters=100000,
        lr=1e-4,
        frozen=['pose_vae'],
        pseudo_labels='kmeans'),
    dict(
        name='proxy',
        iters=50000,
        lr=5e-5,
        frozen=['descriptor_head'],
        pseudo_labels='kmeans'),
    dict(
        name='dldpp',
        iters=100000,
        lr=5e-4,
        frozen=['pose_vae'],
        pseudo_labels='kmeans'),
]
model = dict(train_cfg=dict(dldpp_objective='duld'), stages=stages)
train_cfg = dict(max_iters=sum(s['iters'] for s in stages))
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook'),
    dict(
        type='PseudoLabelHook',
        interval={{_base_.cluster_interval}},
        num_pose_clusters={{_base_.num_pose_clusters}}),
]
