#!/usr/bin/env bash
# One GPU window (about 15 device minutes; one command of at most 10): the GPU benchmark, then
# the campaign of paper-scale runs for the rest of the command, and everything packed for the
# way back. Three steps:
#
#   1. here:    bash scripts/gpu_window.sh prepare
#               Stops nothing: first stop a CPU campaign running in campaign/ (kill -TERM its pid;
#               it checkpoints), so the GPU continues the latest checkpoints and no run forks.
#               Builds .gpu/ (ignored by git): the datasets gzipped, the cma wheel for the GPU
#               machine's Python 3.12, and nothing else.
#   2. device:  run with command "bash scripts/gpu_window.sh run", carry [".gpu"], timeout_s 600:
#               the GPU tests, the benchmark, then the campaign. Writes $OUT/window.tgz
#               (benchmarks/, campaign/, any finished *_paper artifact) and $OUT/window-run.log.
#               If device time remains (each command is at most 10 minutes), unpack (step 3)
#               and run "COMPILE=auto|off bash scripts/gpu_window.sh campaign" for the campaign
#               alone, with the setting the first command chose (its log says which).
#   3. here:    bash scripts/gpu_window.sh unpack <files_at>/window.tgz
#               Unpacks over the checkout; commit benchmarks/, campaign/ and new artifacts, then
#               restart the CPU campaign from the GPU's checkpoints.
#
# Budget of step 2 (WINDOW_SECONDS, default 570 of the 600-second limit): the benchmark gets
# BENCH_SECONDS (default 180; cases start within it and each may run CASE_TIMEOUT, default
# 120 s, more) after the GPU tests (at most 150 s), the campaign what is left. BENCH_ARGS
# picks cases, e.g. "--cases backprop_local backprop_shallow backprop_deep".
# For a dry run of step 2 on the CPU, in a scratch clone:
#   DEVICE=cpu BENCH_ARGS=--smoke CAMPAIGN_ARGS="--preset smoke" OUT=/tmp/o bash scripts/gpu_window.sh run
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:-}

case "$step" in
prepare)
  data=${VSML_DATA:-../shared/data}
  if [ -e campaign/.lock ] && ! flock -n campaign/.lock true; then
    echo "a campaign is running in campaign/; stop it first (kill -TERM <pid>; it checkpoints)" >&2
    exit 1
  fi
  rm -rf .gpu && mkdir -p .gpu/data .gpu/whl
  for ds in MNIST FashionMNIST; do
    mkdir -p .gpu/data/$ds
    for f in "$data"/$ds/raw/*-ubyte; do gzip -9 -c "$f" > .gpu/data/$ds/$(basename "$f").gz; done
  done
  version=$(python -c "import cma; print(cma.__version__.split()[0])")
  python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .gpu/whl "cma==$version"
  du -sh .gpu
  echo "now: device run, command 'bash scripts/gpu_window.sh run', carry ['.gpu'], timeout_s 600"
  ;;
run|campaign)
  start=$SECONDS
  window=${WINDOW_SECONDS:-570}
  bench=${BENCH_SECONDS:-180}
  out=${OUT:-/tmp/window-out}
  mkdir -p "$out" /tmp/site /tmp/data
  exec > >(tee "$out/window-$step.log") 2>&1
  export PYTHONUNBUFFERED=1
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  for ds in MNIST FashionMNIST; do
    mkdir -p /tmp/data/$ds/raw
    for f in .gpu/data/$ds/*.gz; do gunzip -c "$f" > /tmp/data/$ds/raw/$(basename "$f" .gz); done
  done
  export VSML_DATA=/tmp/data
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  python3 -c "import torch, vsml_lite as vl; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), vl.artifacts.code_version())"
  device=${DEVICE:-cuda}
  compile=${COMPILE:-auto}
  if [ "$step" = run ]; then
    if [ "$device" = cuda ]; then  # the GPU-only tests first: compiled steps with CUDA graphs equal eager ones
      # Only the files that hold them: the others import what the GPU machine lacks (nbformat).
      timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider $(grep -l "mark.gpu" tests/*.py) \
        || echo "gpu tests: failed (see above)"
    fi
    python3 scripts/benchmark_gpu.py --device "$device" --budget "$bench" --case-timeout "${CASE_TIMEOUT:-120}" ${BENCH_ARGS:-} \
      || echo "benchmark: some cases failed (see above)"
    # The campaign compiles its steps where the benchmark saw compiling work and pay off: in
    # some case it timed both ways (BENCH_ARGS may name only the cases a window needs).
    compile=$(python3 - <<'PY'
import glob, json, os
files = glob.glob("benchmarks/*.json")
best = "off"
if files:  # the record the benchmark just wrote
    by_case = {}
    for r in json.load(open(max(files, key=os.path.getmtime)))["cases"]:
        by_case.setdefault(r.get("case"), {})[r.get("mode")] = r
    for ms in by_case.values():
        eager, auto = ms.get("eager", {}), ms.get("auto", {})
        if auto.get("compiled") and auto.get("ms_per_iteration", 1e9) < eager.get("ms_per_iteration", 1e9):
            best = "auto"
print(best)
PY
)
    echo "campaign compile setting: $compile (from the benchmark)"
  fi
  left=$(( window - (SECONDS - start) ))
  minutes=$(python3 -c "print(max(($left - 40) / 60, 0.5))")  # 40 s for packing and the way back
  python3 scripts/campaign.py --minutes "$minutes" --device "$device" --compile "$compile" --quiet ${CAMPAIGN_ARGS:-} \
    || echo "campaign: exit $?"
  tar czf "$out/window.tgz" --exclude=.lock benchmarks campaign $(ls vsml_lite/pretrained/*_paper.* 2>/dev/null || true)
  ls -la "$out"
  echo "window used $(( SECONDS - start )) s"
  ;;
unpack)
  archive=${2:?usage: gpu_window.sh unpack <window.tgz>}
  tar xzf "$archive"
  git status --short benchmarks campaign vsml_lite/pretrained
  python scripts/campaign.py --status
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d'  # the comment above
  exit 2
  ;;
esac
