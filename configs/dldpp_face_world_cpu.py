# D-ULD++ on a 5-point face set with a trainable ResNet-18 (quarter width) in
# place of Stable Diffusion: the CPU default of the learnability benchmark
# (tools/analysis/learnability.py; the README's main job). The stage order,
# losses and clustering are those of configs/dldpp_aflw.py; the schedule is
# shortened to minutes on 2 CPU cores and the learning rates raised to match.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dldpp_resnet.py',
    './_base_/schedules/dldpp_cpu_schedule.py',
    './_base_/datasets/face_world.py'
]

model = dict(stages={{_base_.stages}})
# candidates at image corners; landmarks at the similarity peaks of K
# distinct, sharply peaked centroids chosen among 4 K clusters
# (docs/methods.md, "Landmarks on every part")
train_cfg = dict(
    clustering=dict(
        num_pose_clusters=4,
        batch_size=64,
        candidates='corners',
        decode='peaks',
        overcluster=4,
        separation=0.08,
        peak_radius=0.05))
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=10**9, save_last=True))
