# A 5-point COCO face set with whole-image (or given) boxes, e.g. the face
# world of tools/misc/make_synthetic_world.py face (images/, annotations/).
# Crops stay inside the image (CropInsideImage): no artificial border.
dataset_type = 'ULDFaceDataset'
data_root = 'data/face_world/'
train_ann = 'annotations/train.json'
test_ann = 'annotations/test.json'
input_size = (64, 64)
meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index',
             'ori_shape', 'img_shape', 'input_size', 'input_center',
             'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'raw_ann_info', 'dataset_name', 'sample_idx', 'uld_split')

pipeline = [
    dict(type='SafeLoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='CropInsideImage', input_size=input_size),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='PackPoseInputs', meta_keys=meta_keys),
]
train_split = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file=train_ann,
    uld_split='train',
    pipeline=pipeline)
test_split = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file=test_ann,
    uld_split='test',
    test_mode=True,
    pipeline=pipeline)

train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=train_split)
test_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[dict(train_split, test_mode=True), test_split]))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_evaluator = [
    dict(
        type='RegressionNMEMetric',
        norm_mode='interocular',
        norm_indices=(0, 1)),
    dict(type='LandmarkDumpMetric'),
]
