# Table 2 ablation "+ (TSC w/ Full VAE)": two-stage clustering, but the last
# stage keeps the whole VAE trained with the ELBO instead of Eq. 3.
_base_ = ['./dldpp_aflw.py']
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
        frozen=['backbone', 'descriptor_head'],
        pseudo_labels='kmeans'),
    dict(
        name='dldpp',
        iters=100000,
        lr=5e-4,
        frozen=['backbone', 'descriptor_head'],
        pseudo_labels='two_stage'),
]
model = dict(train_cfg=dict(dldpp_objective='elbo'), stages=stages)
train_cfg = dict(max_iters=sum(s['iters'] for s in stages))
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook'),
    dict(type='PseudoLabelHook', interval=5000, num_pose_clusters=10),
]
