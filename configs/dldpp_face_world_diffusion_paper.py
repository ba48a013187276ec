# D-ULD++ as configs/dldpp_face_world_diffusion.py, but with the paper's
# model choices of configs/_base_/models/dldpp_sd.py at CPU size: SiLK
# bootstrapping, NMS candidates, exemplar decoding and flips. Kept to
# measure those choices on diffusion features (docs/methods.md, "Frozen
# diffusion features on a CPU"); the commands are those of
# configs/dldpp_face_world_diffusion.py with
# --config configs/dldpp_face_world_diffusion_paper.py.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dldpp_sd.py',
    './_base_/schedules/dldpp_cpu_schedule.py',
    './_base_/datasets/face_world.py',
    './_base_/models/small_diffusion_backbone.py'
]

model = dict(
    stages={{_base_.stages}},
    backbone={{_base_.small_diffusion_backbone}},
    detector_head=dict(
        in_channels={{_base_.small_sd_channels}}, feat_channels=32),
    descriptor_head=dict(
        in_channels={{_base_.small_sd_channels}},
        feat_channels=64,
        desc_dim=64),
    pose_vae=dict(heatmap_size=(16, 16), base_channels=16, num_stages=2))
train_cfg = dict(clustering=dict(num_pose_clusters=4, batch_size=64))
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=10**9, save_last=True))
