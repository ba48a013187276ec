#!/usr/bin/env bash
# The main job: does D-ULD++ discover landmarks? On a freshly drawn face
# world with known eye, nose and mouth positions (tools/misc/
# make_synthetic_world.py face), train D-ULD++ with a CPU-sized trainable
# backbone (its stage-2 checkpoint is D-ULD), run ZeroShot on the bootstrapped
# backbone, and compare all three with the mean-shape and random-point
# baselines (tools/analysis/learnability.py). About 4-5 minutes on 2 CPU
# cores after set-up. Prints the table and the path of the picture grid.
#
# Environment: WORK_DIR (default work_dirs/learnability), FACE_WORLD (data
# folder, default work_dirs/face_world), SEED (default 0). Extra arguments go
# to learnability.py (e.g. --methods dldpp, --cfg-options ...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
WORK="${WORK_DIR:-work_dirs/learnability}"
DATA="${FACE_WORLD:-work_dirs/face_world}"
SEED="${SEED:-0}"
if [ ! -f "$DATA/annotations/test.json" ]; then
  "$PY" tools/misc/make_synthetic_world.py face "$DATA" --num-train 400 \
    --num-test 150 --seed "$SEED"
fi
"$PY" tools/analysis/learnability.py --data-root "$DATA" \
  --train-ann annotations/train.json --test-ann annotations/test.json \
  --work-dir "$WORK" "$@"
echo "With real Stable Diffusion weights (a diffusers folder, e.g. a saved"
echo "SD-1.5, under checkpoints/stable-diffusion-v1-5), the same benchmark runs"
echo "the paper's backbone:  $PY tools/analysis/learnability.py --data-root $DATA \\"
echo "  --train-ann annotations/train.json --test-ann annotations/test.json \\"
echo "  --work-dir work_dirs/learnability_sd --config configs/dldpp_face_world_sd.py \\"
echo "  --zeroshot-config configs/zeroshot_face_world_sd.py   (GPU recommended)"
