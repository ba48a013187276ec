# The embedded default (README's first command): the whole D-ULD++ pipeline
# on data/face_samples with the tiny Stable Diffusion model made by
# tools/misc/make_tiny_sd.py, a few iterations per stage, on the CPU.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dldpp_sd.py',
    './_base_/schedules/dldpp_schedule.py', './_base_/datasets/face_samples.py'
]

input_size = (64, 64)
out_stride = 4
agg_channels = 32
heatmap_size = (16, 16)

stages = [
    dict(
        name='bootstrap',
        iters=6,
        lr=1e-3,
        frozen=['pose_vae'],
        pseudo_labels=None),
    dict(
        name='duld',
        iters=6,
        lr=1e-3,
        frozen=['pose_vae'],
        pseudo_labels='kmeans'),
    dict(
        name='proxy',
        iters=4,
        lr=5e-4,
        frozen=['backbone', 'descriptor_head'],
        pseudo_labels='kmeans'),
    dict(
        name='dldpp',
        iters=6,
        lr=5e-4,
        frozen=[
            'backbone', 'descriptor_head', 'pose_vae.decoder',
            'pose_vae.fc_decode'
        ],
        pseudo_labels='two_stage'),
]
train_cfg = dict(
    clustering=dict(interval=3, num_pose_clusters=2, batch_size=4))

model = dict(
    stages=stages,
    backbone=dict(
        pretrained='work_dirs/tiny_sd',
        agg_channels=agg_channels,
        out_stride=out_stride,
        sd_input_size=None,
        agg_cfg=dict(with_cp=False)),
    detector_head=dict(in_channels=agg_channels, feat_channels=32),
    descriptor_head=dict(
        in_channels=agg_channels, feat_channels=32, desc_dim=32),
    pose_vae=dict(heatmap_size=heatmap_size, latent_dim=64,
                  base_channels=8, num_stages=2),
    # a random tiny SD trained for a few iterations has no calibrated
    # detector: every local maximum (3x3) is a keypoint here
    test_cfg=dict(max_keypoints=20, score_thr=0.0, nms_kernel=3))

meta_keys = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index',
             'ori_shape', 'img_shape', 'input_size', 'input_center',
             'input_scale', 'flip', 'flip_direction', 'flip_indices',
             'raw_ann_info', 'dataset_name', 'sample_idx', 'uld_split')
pipeline = [
    dict(type='SafeLoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='CropInsideImage', input_size=input_size),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='PackPoseInputs', meta_keys=meta_keys),
]
data_root = 'data/face_samples/'
train_split = dict(
    type='ULDFaceDataset',
    data_root=data_root,
    ann_file='uld_5pt_train.json',
    uld_split='train',
    pipeline=pipeline)
test_split = dict(
    type='ULDFaceDataset',
    data_root=data_root,
    ann_file='uld_5pt_test.json',
    uld_split='test',
    test_mode=True,
    pipeline=pipeline)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=train_split)
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='ConcatDataset',
        datasets=[dict(train_split, test_mode=True), test_split]))
default_hooks = dict(
    logger=dict(interval=2),
    checkpoint=dict(interval=10))
