#!/usr/bin/env bash
# The embedded default: the whole D-ULD++ pipeline (bootstrapping, D-ULD,
# pose-guided proxy task, D-ULD++ with two-stage clustering) on the real face
# images shipped in data/face_samples with a tiny Stable Diffusion model
# built on the spot, then evaluation (forward/backward NME, CED curves,
# cluster quality, landmark visualisations). A few minutes on 2 CPU cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
CFG=configs/dldpp_face_samples_demo.py
WORK="${WORK_DIR:-work_dirs/dldpp_face_samples_demo}"
SD_DIR=work_dirs/tiny_sd
[ -f "$SD_DIR/model_index.json" ] || "$PY" tools/misc/make_tiny_sd.py "$SD_DIR"
"$PY" tools/train.py "$CFG" --work-dir "$WORK"
"$PY" tools/test.py "$CFG" "$WORK/stage4_dldpp.pth" --work-dir "$WORK" \
  --show-dir vis --out "$WORK/metrics.json"
"$PY" - "$WORK" <<'PYEOF'
import json, os, sys
work = sys.argv[1]
m = json.load(open(os.path.join(work, 'metrics.json')))
print('\n=== D-ULD++ on data/face_samples (tiny SD model) ===')
for k in sorted(m):
    if isinstance(m[k], (int, float)):
        print(f'{k:>32s}: {m[k]:.4f}')
import glob
run = sorted(glob.glob(os.path.join(work, '2*', 'uld_eval')))[-1]
run = os.path.dirname(run)
print(f'metrics, CED curves (PNG + JSON), per-image errors: {run}/uld_eval')
print(f'discovered landmarks (JSON): {work}/landmarks.json')
print(f'landmark visualisations: {run}/vis')
print(f'per-stage checkpoints: {work}/stage*_*.pth, '
      f'pseudo-labels per round: {work}/pseudo_labels/')
PYEOF
