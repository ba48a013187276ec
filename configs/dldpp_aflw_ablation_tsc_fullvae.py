# Table 2 ablation "+ (TSC w/ Full VAE)": two-stage clustering, but the last
# stage keeps the whole VAE trained with the ELBO instead of Eq. 3.
_base_ = ['./dldpp_aflw.py']
model = dict(train_cfg=dict(dldpp_objective='elbo'))
stages = [
    dict(name='bootstrap', iters=50000, lr=1e-4, frozen=['pose_vae']),
    dict(name='duld', iters=100000, lr=1e-4, frozen=['pose_vae']),
    dict(name='proxy', iters=50000, lr=5e-5,
         frozen=['backbone', 'descriptor_head']),
    dict(name='dldpp', iters=100000, lr=5e-4,
         frozen=['backbone', 'descriptor_head']),
]
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook', stages=stages),
    dict(type='PseudoLabelHook', interval=5000, num_pose_clusters=10),
]
