# ZeroShot (paper Sec. 3.1) on the frozen features of a small latent
# diffusion model trained on the world's training images
# (tools/misc/train_small_diffusion.py); see
# configs/dldpp_face_world_diffusion.py for the commands.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/zeroshot_sd.py',
    './_base_/datasets/face_world.py',
    './_base_/models/small_diffusion_backbone.py'
]

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
test_cfg = dict()
# The learnability benchmark hands ZeroShot the aggregator trained by
# D-ULD's bootstrapping stage when True, and leaves the paper's randomly
# initialised one when False: on these features the bootstrapped one is
# better (docs/methods.md, "Frozen diffusion features on a CPU")
zeroshot_from_bootstrap = True

model = dict(backbone={{_base_.small_diffusion_backbone}})

fit_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset={{_base_.train_split}})
custom_hooks = [dict(type='ZeroShotFitHook', fit_dataloader=fit_dataloader)]
default_hooks = dict(logger=dict(interval=10))
