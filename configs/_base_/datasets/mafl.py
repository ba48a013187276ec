# MAFL: discovery on CelebA train, regressors on all MAFL train images,
# 5 points.
dataset_type = 'MAFLDataset'
data_root = 'data/celeba/'
input_size = (256, 256)
meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index',
             'ori_shape', 'img_shape', 'input_size', 'input_center',
             'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'raw_ann_info', 'dataset_name', 'sample_idx', 'uld_split',
             'yaw')

pipeline = [
    dict(type='SafeLoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.0),
    # no artificial border in the input (docs/methods.md)
    dict(type='CropInsideImage', input_size=input_size),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='PackPoseInputs', meta_keys=meta_keys),
]
train_split = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img='img_align_celeba/'),
    ann_file='annotations/celeba_train.json',
    uld_split='train',
    pipeline=pipeline)
fit_split = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img='img_align_celeba/'),
    ann_file='annotations/mafl_train.json',
    uld_split='train',
    test_mode=True,
    pipeline=pipeline)
test_split = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img='img_align_celeba/'),
    ann_file='annotations/mafl_test.json',
    uld_split='test',
    test_mode=True,
    pipeline=pipeline)

train_dataloader = dict(
    batch_size=12,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=train_split)
test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='ConcatDataset', datasets=[fit_split, test_split]))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_evaluator = [
    dict(
        type='RegressionNMEMetric',
        norm_mode='interocular',
        norm_indices=(0, 1)),
    dict(type='LandmarkDumpMetric'),  # landmarks.json in the work dir
]
