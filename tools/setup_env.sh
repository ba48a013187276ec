#!/usr/bin/env bash
# Create (or reuse) the project virtual environment at <repo>/.venv and install
# the whole stack for CPU machines without prebuilt mmcv wheels:
#   torch 2.14.1 + torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0 (compiled
#   from source with its C++ ops, C++20), mmdet 3.3.0, mmpose 1.3.2 (--no-deps),
#   xtcocotools (built against the installed numpy), diffusers and friends,
#   then mmuld itself in editable mode.
# Idempotent: a stamp keyed on this script and requirements/ makes a second
# run finish in seconds. The compiled mmcv wheel is kept in
# ${MMULD_WHEEL_CACHE:-~/.cache/mmuld/wheels} so that a new venv on the same
# machine does not compile it again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
WHEELS="${MMULD_WHEEL_CACHE:-$HOME/.cache/mmuld/wheels}"
STAMP="$VENV/.mmuld-stamp"

want_stamp="$(cat "$ROOT/tools/setup_env.sh" "$ROOT"/requirements/*.txt "$ROOT/setup.py" 2>/dev/null | sha256sum | cut -d' ' -f1)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup_env] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] \
   && "$VENV/bin/python" -c "import mmuld, mmcv.ops, mmdet, mmpose, diffusers" 2>/dev/null; then
  exit 0
fi

echo "[setup_env] installing into $VENV (first run takes 10-20 minutes: mmcv compiles)"
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install "torch==2.14.1" "torchvision==0.29.1"
"${PIP[@]}" install "setuptools<70" wheel ninja
"${PIP[@]}" install "mmengine==0.10.7"

if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
  mkdir -p "$WHEELS"
  whl="$(ls "$WHEELS"/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 || true)"
  if [ -z "$whl" ]; then
    echo "[setup_env] compiling mmcv 2.1.0 with ops (about 10-15 min on 2 cores)"
    tmp="$(mktemp -d)"
    "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation "mmcv==2.1.0" -d "$tmp"
    tar -xzf "$tmp"/mmcv-2.1.0.tar.gz -C "$tmp"
    sed -i 's/-std=c++17/-std=c++20/g' "$tmp/mmcv-2.1.0/setup.py"
    (cd "$tmp/mmcv-2.1.0" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" \
      "$VENV/bin/python" -m pip wheel --no-build-isolation --no-deps -w "$WHEELS" .)
    rm -rf "$tmp"
    whl="$(ls "$WHEELS"/mmcv-2.1.0-*.whl | head -n1)"
  fi
  "${PIP[@]}" install --no-deps "$whl"
  "${PIP[@]}" install addict packaging pyyaml yapf
fi

"${PIP[@]}" install "mmdet==3.3.0"
"${PIP[@]}" install --no-deps "mmpose==1.3.2"
"${PIP[@]}" install json-tricks munkres matplotlib scipy pillow six cython
if ! "$VENV/bin/python" -c "import xtcocotools.coco" 2>/dev/null; then
  "${PIP[@]}" install --no-binary xtcocotools --no-build-isolation "xtcocotools==1.14.3"
fi
"${PIP[@]}" install -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
"${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"

"$VENV/bin/python" -c "import mmuld, mmcv.ops, mmdet, mmpose, diffusers; print('[setup_env] ok: mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmpose', mmpose.__version__)"
echo "$want_stamp" > "$STAMP"
