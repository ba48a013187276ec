# ZeroShot (paper Sec. 3.1) on a 5-point face set with the same trainable
# ResNet-18 feature extractor as configs/dldpp_face_world_cpu.py. ZeroShot is
# training-free: it clusters the features of the backbone it is given. The
# learnability benchmark gives it the backbone after D-ULD's bootstrapping
# stage (--checkpoint / load_from), the closest analogue of the paper's
# pretrained Stable Diffusion features; with no checkpoint the backbone keeps
# its random initialisation.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dldpp_resnet.py',
    './_base_/datasets/face_world.py'
]

train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
test_cfg = dict()

# The paper's K-means and exemplar assignment, on each RoI's 16 strongest
# Shi-Tomasi corners instead of 200 uniform pixels: these worlds' RoIs are
# whole images, and uniform pixels put a third of the landmarks on the
# background clutter (forward NME 23.98 -> 11.84 % on the main job's world,
# 30.14 -> 22.78 % on a cat world; docs/methods.md, "ZeroShot's samples and
# decoding"). configs/zeroshot_face_world_sd.py keeps the paper's pixels.
model = dict(
    _delete_=True,
    type='ZeroShotEstimator',
    num_landmarks={{_base_.num_landmarks}},
    samples='corners',
    samples_per_image=16,
    decode='exemplar',
    seed=0,
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    test_cfg=dict(output_descriptors=True))

fit_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset={{_base_.train_split}})
custom_hooks = [dict(type='ZeroShotFitHook', fit_dataloader=fit_dataloader)]
default_hooks = dict(logger=dict(interval=10))
