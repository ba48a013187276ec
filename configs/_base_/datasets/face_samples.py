# The small real face set shipped in data/face_samples (MMPose test images
# of 300W, 300W-LP, AFLW, COFW, LaPa and WFLW), ground truth mapped to the
# 5 MAFL landmarks (eye centres, nose tip, mouth corners).
dataset_type = 'ULDFaceDataset'
data_root = 'data/face_samples/'
input_size = (256, 256)
meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index',
             'ori_shape', 'img_shape', 'input_size', 'input_center',
             'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'raw_ann_info', 'dataset_name', 'sample_idx', 'uld_split')

pipeline = [
    dict(type='SafeLoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    # no artificial border in the input (docs/methods.md)
    dict(type='CropInsideImage', input_size=input_size),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='PackPoseInputs', meta_keys=meta_keys),
]
train_split = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='uld_5pt_train.json',
    uld_split='train',
    pipeline=pipeline)
test_split = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='uld_5pt_test.json',
    uld_split='test',
    test_mode=True,
    pipeline=pipeline)

train_dataloader = dict(
    batch_size=12,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=train_split)
# regressor-fitting split ('train') and evaluation split ('test') together
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(train_split, test_mode=True),
            test_split,
        ]))
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
