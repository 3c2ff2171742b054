#!/bin/bash
# The GPU checks, run in one go on a lent CUDA machine (session 26: one H200 for 15 minutes, about 9 minutes of it for
# this): the bench's CUDA path on the embedded world, then the real-size presets with random weights (nothing is
# downloaded). The README's "Benchmarks" gives the figures. `--customize-steps` on `world` took over 75 s there (tiny
# kernels, launch-bound), so it is left out.
# Each step has its own time limit and writes its JSON under $OUT (default ./gpu-check), so a slow step costs only
# itself. Where the machine lacks diffusers/peft, wheels in .whl/ are installed to /tmp/site first (made here with
# `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl
# diffusers==0.42.1 peft==0.21.2`; the device tool carries .whl).
#
#   bash benchmarks/gpu_check.sh            # then read $OUT/*.json and $OUT/log.txt
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TQDM_DISABLE=1 COLUMNS=200
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD/src
else
    export PYTHONPATH=$PWD/src
fi
PY=${PY:-python3}
if ! $PY -c "import imageio_ffmpeg" 2>/dev/null; then  # only mp4 writing needs it, and the bench writes none
    mkdir -p /tmp/stub/imageio_ffmpeg && echo '"""A stand-in: this machine has no ffmpeg wheel."""' >/tmp/stub/imageio_ffmpeg/__init__.py
    export PYTHONPATH=$PYTHONPATH:/tmp/stub
fi
step() {  # step NAME SECONDS ARGS...: one bench run, its output in the log, its JSON in $OUT/NAME.json
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date +%T), limit ${limit}s): stillmoving bench $*"
    local start=$SECONDS
    timeout "$limit" $PY -m stillmoving bench "$@" -o "$OUT/$name.json" 2>&1 | tr '\r' '\n' | grep -v 'it/s' | tail -40
    echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s"
}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $PY -c "import torch, diffusers, peft, transformers, accelerate; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('diffusers', diffusers.__version__, 'peft', peft.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)"
    step world_cuda 75 --preset world --device cuda --steps 3
    step sd15_512_bf16 130 --preset sd15-512 --device cuda --dtype bfloat16 --steps 10
    step sd15_512_bf16_gc 110 --preset sd15-512 --device cuda --dtype bfloat16 --gradient-checkpointing --steps 5
    step zeroscope_bf16 110 --preset modelscope-256,zeroscope-576w --device cuda --dtype bfloat16 --steps 5
    step sdxl_1024_bf16_gc 130 --preset animatediff-sdxl-1024 --device cuda --dtype bfloat16 --gradient-checkpointing --steps 3
} 2>&1 | tee "$OUT/log.txt"
