# D-ULD (paper Sec. 3.2) on mafl: bootstrapping 50k -> self-training 100k
# with K-means pseudo-labels every 5000 iterations.
_base_ = ['./dldpp_mafl.py']
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
]
train_cfg = dict(max_iters=sum(s['iters'] for s in stages))
model = dict(pose_vae=None, loss_elbo=None, loss_latent=None, stages=stages)
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook'),
    dict(type='PseudoLabelHook', interval=5000),
]
