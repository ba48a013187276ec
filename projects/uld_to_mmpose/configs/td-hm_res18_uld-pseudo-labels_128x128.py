# A standard MMPose top-down heatmap model (ResNet-18 + HeatmapHead, MSRA
# heatmaps) trained on the landmarks an mmuld model discovered, exported by
# tools/export_pseudo_labels.py; evaluated with mmuld's forward/backward NME
# on data/face_samples (uld_5pt train split fits the regressors, test split
# is evaluated). CPU-sized: 128x128 input, a few iterations.
#
# default_scope='mmuld': mmuld's registries are children of mmpose's, so
# every mmpose component below builds, and so do mmuld's datasets / metrics.
default_scope = 'mmuld'

# ---- exported pseudo-labels (tools/export_pseudo_labels.py --out-dir) ----
export_dir = 'work_dirs/uld_to_mmpose/pseudo_labels/'
ann_file = export_dir + 'uld_pseudo_labels.json'
metainfo_file = export_dir + 'uld_pseudo_labels_info.py'
img_root = 'data/face_samples/'  # `img_root` printed by the export
num_keypoints = 10  # K of the mmuld model (printed by the export)

input_size = (128, 128)
heatmap_size = (32, 32)
max_iters = 60

# ---- runtime ----
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=max_iters,
                    by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
visualizer = dict(
    type='ULDLocalVisualizer',
    num_landmarks=num_keypoints,
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
log_processor = dict(
    type='LogProcessor', window_size=10, by_epoch=False, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)

# ---- schedule ----
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=10, start_factor=0.1, by_epoch=False)
]

# ---- model: a standard mmpose top-down heatmap estimator ----
codec = dict(
    type='MSRAHeatmap',
    input_size=input_size,
    heatmap_size=heatmap_size,
    sigma=1.5)
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
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
    # the test set's GT scheme (5 points) has other flip indices than the
    # K discovered landmarks: no flip test.
    test_cfg=dict(flip_test=False))

# ---- training data: the exported COCO-style pseudo-labels ----
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    # uses the flip pairs found by the export (dataset_info `swap`)
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', rotate_factor=20, scale_factor=(0.8,
                                                                     1.2)),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CocoDataset',
        data_root='',
        data_mode='topdown',
        ann_file=ann_file,
        data_prefix=dict(img=img_root),
        metainfo=dict(from_file=metainfo_file),
        pipeline=train_pipeline))

# ---- evaluation: mmuld's forward / backward NME on data/face_samples ----
meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index',
             'ori_shape', 'img_shape', 'input_size', 'input_center',
             'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'raw_ann_info', 'dataset_name', 'sample_idx', 'uld_split')
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='PackPoseInputs', meta_keys=meta_keys),
]
eval_root = 'data/face_samples/'
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type='ULDFaceDataset',
                data_root=eval_root,
                ann_file='uld_5pt_train.json',
                uld_split='train',
                test_mode=True,
                pipeline=test_pipeline),
            dict(
                type='ULDFaceDataset',
                data_root=eval_root,
                ann_file='uld_5pt_test.json',
                uld_split='test',
                test_mode=True,
                pipeline=test_pipeline),
        ]))
test_evaluator = dict(
    type='RegressionNMEMetric', norm_mode='interocular', norm_indices=(0, 1))
