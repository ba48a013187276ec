# D-ULD (paper Sec. 3.2) on catheads: bootstrapping 50k -> self-training 100k
# with K-means pseudo-labels every 5000 iterations.
_base_ = ['./dldpp_catheads.py']
stages = [
    dict(name='bootstrap', iters=50000, lr=1e-4, frozen=['pose_vae']),
    dict(name='duld', iters=100000, lr=1e-4, frozen=['pose_vae']),
]
train_cfg = dict(max_iters=150000)
model = dict(pose_vae=None, loss_elbo=None, loss_latent=None)
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook', stages=stages),
    dict(type='PseudoLabelHook', interval=5000, stages=('duld', ),
         two_stage=()),
]
