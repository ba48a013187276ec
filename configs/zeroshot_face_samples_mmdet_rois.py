# ZeroShot demo with RoIs from a detector instead of the annotation boxes
# (the paper detects the RoI with Detectron2; here any mmdet detector via
# tools/detect_rois.py). First write the RoI file (see docs/zeroshot.md):
#
#   python tools/detect_rois.py data/face_samples \
#       --det-config DET_CONFIG.py --det-checkpoint DET.pth \
#       --out work_dirs/zs_demo_rois/rois.json
#   python tools/test.py configs/zeroshot_face_samples_mmdet_rois.py \
#       --work-dir work_dirs/zs_demo_rois
#
# Images missing from the file keep their annotation box (LoadRoIs counts
# them and warns once).
_base_ = ['./zeroshot_face_samples_demo.py']

roi_file = 'work_dirs/zs_demo_rois/rois.json'
input_size = (64, 64)
meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index',
             'ori_shape', 'img_shape', 'input_size', 'input_center',
             'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'raw_ann_info', 'dataset_name', 'sample_idx', 'uld_split')
pipeline = [
    dict(type='SafeLoadImage'),
    dict(type='LoadRoIs', roi_file=roi_file, fallback='annotation'),
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
fit_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=train_split)
test_dataloader = dict(
    dataset=dict(type='ConcatDataset', datasets=[train_split, test_split]))
custom_hooks = [dict(type='ZeroShotFitHook', fit_dataloader=fit_dataloader)]
