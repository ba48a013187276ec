# D-ULD++ on the frozen features of a small latent diffusion model trained
# on the world's own training images (tools/misc/train_small_diffusion.py):
# Stable Diffusion's structure at CPU size in place of SD-1.5, a trained
# aggregator and heads. The rest of the model (bootstrapping, corner
# candidates, peak decoding, no flips, the correspondence term) is that of
# the CPU default configs/dldpp_face_world_cpu.py: on these features it
# gives 0.21-0.23 x the mean shape's forward NME where the paper's choices
# (configs/dldpp_face_world_diffusion_paper.py) give 0.82 x, and its corner
# candidates double the mean part accuracy of the detector's dense cells
# on two face worlds (docs/methods.md, "Frozen diffusion features on a
# CPU"; there too flips, exemplar decoding and a trained aggregator in the
# last two stages, each measured on its own: none better). With SD-1.5 use
# configs/dldpp_face_world_sd.py. Two steps on 2 CPU cores:
#   .venv/bin/python tools/misc/train_small_diffusion.py DATA \
#       DATA/small_sd --ann DATA/annotations/train.json
#   .venv/bin/python tools/analysis/learnability.py --data-root DATA \
#       --train-ann annotations/train.json --test-ann annotations/test.json \
#       --work-dir work_dirs/learnability_diffusion \
#       --config configs/dldpp_face_world_diffusion.py \
#       --zeroshot-config configs/zeroshot_face_world_diffusion.py \
#       --cfg-options model.backbone.pretrained=DATA/small_sd
_base_ = [
    './dldpp_face_world_cpu.py', './_base_/models/small_diffusion_backbone.py'
]
# the CPU default's heads take 64 channels, as many as this aggregator gives
model = dict(backbone={{_base_.small_diffusion_backbone}})
