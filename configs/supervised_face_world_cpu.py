# The supervised upper bound of the learnability benchmark
# (tools/analysis/learnability.py --supervised): mmpose's standard top-down
# heatmap model (ResNet-18 + HeatmapHead, MSRA heatmaps, random
# initialisation) trained WITH the ground truth of the training split, at
# the CPU default's 64 px input, on the same crops. Scored like the methods
# that learn without labels, it shows how far discovery is from supervision.
# num_keypoints is set by the tool from the annotation file.
_base_ = ['./_base_/default_runtime.py', './_base_/datasets/face_world.py']

num_keypoints = 5
input_size = (64, 64)
heatmap_size = (16, 16)
max_iters = 1500

codec = dict(
    type='MSRAHeatmap',
    input_size=input_size,
    heatmap_size=heatmap_size,
    sigma=1.0)
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),  # random init: no downloads
    head=dict(
        type='HeatmapHead',
        in_channels=512,
        out_channels=num_keypoints,
        deconv_out_channels=(128, 128, 128),
        deconv_kernel_sizes=(4, 4, 4),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    # no flip test: the point order of an arbitrary json has no known
    # left-right pairs
    test_cfg=dict(flip_test=False))

train_pipeline = [
    dict(type='SafeLoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='RandomBBoxTransform', shift_factor=0.05, rotate_factor=20,
         scale_factor=(0.9, 1.1)),
    dict(type='CropInsideImage', input_size=input_size),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
val_cfg = None
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=50, start_factor=0.1, by_epoch=False),
    dict(type='MultiStepLR', milestones=[1000, 1350], gamma=0.1,
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=max_iters, by_epoch=False))
custom_hooks = [dict(type='NaNLossHook')]
