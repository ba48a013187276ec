# ZeroShot baseline (paper Sec. 3.1) on data/face_samples with the tiny
# Stable Diffusion model of tools/misc/make_tiny_sd.py, on the CPU:
#
#   python tools/misc/make_tiny_sd.py work_dirs/tiny_sd
#   python tools/test.py configs/zeroshot_face_samples_demo.py \
#       --work-dir work_dirs/zs_demo --show-dir vis
#
# The first run fits K-means on the training split and saves
# work_dirs/zs_demo/zeroshot_centroids.pth; later runs reuse it. No
# checkpoint: the aggregator keeps its (seeded) random initialisation unless
# one is given (e.g. a D-ULD checkpoint; its backbone weights are used).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/zeroshot_sd.py',
    './_base_/datasets/face_samples.py'
]

# ZeroShot is training-free: no train loop, optimizer or train dataloader
# (the training split is read by ZeroShotFitHook's `fit_dataloader`).
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
test_cfg = dict()

input_size = (64, 64)
out_stride = 4
agg_channels = 32

model = dict(
    samples_per_image=200,
    backbone=dict(
        pretrained='work_dirs/tiny_sd',
        agg_channels=agg_channels,
        out_stride=out_stride,
        sd_input_size=None))

meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index',
             'ori_shape', 'img_shape', 'input_size', 'input_center',
             'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'raw_ann_info', 'dataset_name', 'sample_idx', 'uld_split')
pipeline = [
    dict(type='SafeLoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='PackPoseInputs', meta_keys=meta_keys),
]
data_root = 'data/face_samples/'
train_split = dict(
    type='ULDFaceDataset',
    data_root=data_root,
    ann_file='uld_5pt_train.json',
    uld_split='train',
    test_mode=True,
    pipeline=pipeline)
test_split = dict(
    type='ULDFaceDataset',
    data_root=data_root,
    ann_file='uld_5pt_test.json',
    uld_split='test',
    test_mode=True,
    pipeline=pipeline)

# K-means is fitted on the training split ...
fit_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=train_split)
# ... and the landmarks of both splits are predicted: 'train' samples fit
# the forward/backward regressors, 'test' samples are evaluated.
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type='ConcatDataset', datasets=[train_split, test_split]))
test_evaluator = [
    dict(
        type='RegressionNMEMetric',
        norm_mode='interocular',
        norm_indices=(0, 1)),
    dict(type='LandmarkDumpMetric'),
]
custom_hooks = [dict(type='ZeroShotFitHook', fit_dataloader=fit_dataloader)]
default_hooks = dict(logger=dict(interval=1))
