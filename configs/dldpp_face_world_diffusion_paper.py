# D-ULD++ as configs/dldpp_face_world_diffusion.py, but with the paper's
# model choices of configs/_base_/models/dldpp_sd.py at CPU size: SiLK
# bootstrapping, NMS candidates, exemplar decoding and flips. Kept to
# measure those choices on diffusion features (docs/methods.md, "Frozen
# diffusion features on a CPU"); the commands are those of
# configs/dldpp_face_world_diffusion.py with
# --config configs/dldpp_face_world_diffusion_paper.py.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dldpp_sd.py',
    './_base_/schedules/dldpp_schedule.py', './_base_/datasets/face_world.py',
    './_base_/models/small_diffusion_backbone.py'
]

stages = [
    dict(
        name='bootstrap',
        iters=400,
        lr=1e-3,
        frozen=['pose_vae'],
        pseudo_labels=None),
    dict(
        name='duld',
        iters=400,
        lr=1e-3,
        frozen=['pose_vae'],
        pseudo_labels='kmeans'),
    dict(
        name='proxy',
        iters=50,
        lr=5e-4,
        frozen=['backbone', 'descriptor_head'],
        pseudo_labels='kmeans'),
    dict(
        name='dldpp',
        iters=200,
        lr=5e-4,
        frozen=[
            'backbone', 'descriptor_head', 'pose_vae.decoder',
            'pose_vae.fc_decode'
        ],
        pseudo_labels='two_stage'),
]
model = dict(
    stages=stages,
    backbone={{_base_.small_diffusion_backbone}},
    detector_head=dict(
        in_channels={{_base_.small_sd_channels}}, feat_channels=32),
    descriptor_head=dict(
        in_channels={{_base_.small_sd_channels}},
        feat_channels=64,
        desc_dim=64),
    pose_vae=dict(heatmap_size=(16, 16), base_channels=16, num_stages=2))
train_cfg = dict(max_iters=sum(s['iters'] for s in stages))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
custom_hooks = [
    dict(type='NaNLossHook'),
    dict(type='ULDStageHook'),
    dict(
        type='PseudoLabelHook',
        interval=100,
        num_pose_clusters=4,
        batch_size=64),
]
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=10**9, save_last=True))
