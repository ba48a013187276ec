# The learnability benchmark with the paper's backbone: Stable Diffusion
# features (a local diffusers folder, e.g. a saved SD-1.5) aggregated as in
# Eq. 2, instead of the CPU default's trainable ResNet. A GPU is advised.
#   .venv/bin/python tools/analysis/learnability.py --data-root DATA \
#       --train-ann annotations/train.json --test-ann annotations/test.json \
#       --work-dir work_dirs/learnability_sd \
#       --config configs/dldpp_face_world_sd.py \
#       --zeroshot-config configs/zeroshot_face_world_sd.py
_base_ = ['./dldpp_face_world_cpu.py']

agg_channels = 384
model = dict(
    backbone=dict(
        _delete_=True,
        type='StableDiffusionBackbone',
        pretrained='checkpoints/stable-diffusion-v1-5',
        agg_channels=agg_channels,
        out_stride=4,
        sd_input_size=512),
    detector_head=dict(in_channels=agg_channels),
    descriptor_head=dict(in_channels=agg_channels))
