#!/usr/bin/env bash
# One device run of the training-speed checks on a CUDA machine
# whose Python has torch but not the OpenMMLab stack.
#
# Prepare on the development machine (wheels of the pure-python packages,
# mmcv built without ops, i.e. without compiling anything):
#   echo /.whl/ >> .git/info/exclude
#   bash tools/analysis/gpu_check.sh --fetch-wheels
# Run on the device from the repository root, with `.whl` carried:
#   bash tools/analysis/gpu_check.sh
# Everything is logged to $OUT (default /tmp/gpu_check) as well.
# ITERS=n: timed iterations per stage (3); PROFILE=1: top operators of the
# fast path; QUICK=1: only the training benchmarks and the CUDA tests.
# Takes about 4 minutes on an H200 (install 20 s, each training benchmark
# about 40 s, the test runs about 20 s each), plus the compiled run
# (compilation not yet timed on a GPU).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

if [ "${1:-}" = "--fetch-wheels" ]; then
    set -e
    PY=${PY:-.venv/bin/python}
    mkdir -p .whl
    # versions of the development environment
    pkgs=""
    for p in mmengine mmpose mmdet diffusers addict yapf termcolor \
             json_tricks munkres platformdirs importlib_metadata \
             pycocotools shapely terminaltables; do
        v=$($PY -m pip show "$p" 2>/dev/null | awk '/^Version:/{print $2}')
        [ -n "$v" ] && pkgs="$pkgs $p==$v"
    done
    python3 -m pip download --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl $pkgs
    python3 -m pip download --no-deps --only-binary=:all: \
        --python-version 3.12 -d .whl "setuptools<81"
    # xtcocotools has no cp312 wheel and mmcv none for the device's torch:
    # build both here with a Python 3.12 (PY312), mmcv without ops
    # (mmcv-lite: pure python, nothing compiled)
    PY312=${PY312:-python3.12}
    $PY312 -m venv /tmp/py312 && /tmp/py312/bin/pip install -q \
        "numpy>=2" cython wheel "setuptools<70"
    x=$($PY -m pip show xtcocotools | awk '/^Version:/{print $2}')
    m=$($PY -m pip show mmcv | awk '/^Version:/{print $2}')
    /tmp/py312/bin/pip download -q --no-deps --no-binary :all: \
        --no-build-isolation -d /tmp/sdists "xtcocotools==$x" "mmcv==$m"
    /tmp/py312/bin/pip wheel -q --no-deps --no-build-isolation -w .whl \
        "/tmp/sdists/xtcocotools-$x.tar.gz"
    MMCV_WITH_OPS=0 /tmp/py312/bin/pip wheel -q --no-deps \
        --no-build-isolation -w .whl "/tmp/sdists/mmcv-$m.tar.gz"
    ls -la .whl
    exit 0
fi

OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
log() { echo "=== $*" | tee -a "$OUT/summary.txt"; }

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl || exit 1
# mmcv-lite (mmcv built with MMCV_WITH_OPS=0) has no compiled ops, yet
# mmpose.models imports some at module level (never called by mmuld): a
# stub extension that fails only when an op is called
cat > /tmp/site/mmcv/_ext.py <<'STUB'
"""Stub of mmcv's compiled ops for mmcv-lite (benchmark machines only)."""


def __getattr__(name):
    def missing(*args, **kwargs):
        raise RuntimeError(f'mmcv op {name} is not compiled (mmcv-lite)')
    return missing
STUB
export PYTHONPATH=/tmp/site:$ROOT
nvidia-smi -L | tee -a "$OUT/summary.txt"
python3 -c "import torch, mmengine, mmcv, mmpose, diffusers; \
print('torch', torch.__version__, 'mmengine', mmengine.__version__, \
'mmcv', mmcv.__version__, 'mmpose', mmpose.__version__, \
'diffusers', diffusers.__version__)" 2>&1 | tee -a "$OUT/summary.txt"
python3 -c "from mmuld.utils import register_all_modules; \
register_all_modules(); import sys; \
print('mmcv.ops imported:', 'mmcv.ops' in sys.modules)" 2>&1 \
    | tee -a "$OUT/summary.txt"

BT="python3 tools/analysis/benchmark_training.py configs/dldpp_aflw.py \
--sd15-random --device cuda --iters ${ITERS:-3} --warmup 1"
run() {  # name, timeout, command...
    local name=$1 limit=$2
    shift 2
    log "$name: $*"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | \
        grep -v "Warning\|pkg_resources\|loss_scaler\|USDT\|gpuGetDevice" | tail -n 50 | tee -a "$OUT/summary.txt"
}
# the targets' setting (SD at the 256 px crop), before and after
run naive256 150 $BT --naive --no-cp --sd-input-size 0
run fast256_amp 150 $BT --amp --no-cp --sd-input-size 0 \
    ${PROFILE:+--profile}
run fast256_amp_cp 120 $BT --amp --with-cp --sd-input-size 0
# the aggregator's bottlenecks through torch.compile (not yet measured on
# a GPU; the warm-up iteration of each stage compiles)
run fast256_amp_compile 300 $BT --amp --no-cp --sd-input-size 0 --compile
# the paper configs' default: SD at 512 px
run fast512_amp_cp 150 $BT --amp
if [ -n "${QUICK:-}" ]; then  # a rerun: the CUDA tests only
    run pytest_cuda 150 python3 -m pytest -q -p no:cacheprovider \
        -m "not slow" -k cuda tests
    exit 0
fi
# SD extraction at 512 px, 5 timesteps (+ naive comparison), and the cost
# of sd_input_size=512 for 256 px crops
run backbone512 120 python3 tools/analysis/benchmark_backbone.py \
    --device cuda --batch-size 16 --img-size 512 --sd-input-size 0 \
    --naive-images 2
run backbone256to512 120 python3 tools/analysis/benchmark_backbone.py \
    --device cuda --batch-size 16 --img-size 256 --naive-images 2
# the clustering tests and every CUDA test
run pytest_clustering 120 python3 -m pytest -q -p no:cacheprovider \
    tests/test_clustering
run pytest_cuda 150 python3 -m pytest -q -p no:cacheprovider \
    -m "not slow" -k cuda tests
exit 0
