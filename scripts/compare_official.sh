#!/usr/bin/env bash
# Time the paper's official JAX code and vsml_lite on the same case, alternately, each run in
# its own process, and print the ratio of every round (absolute times on shared machines drift;
# ratios from one round do not). The official side is ../shared/perf/bench_official.py, set up
# as its README says (PERF_DIR with the official tree and a JAX venv); nothing of it is copied.
#
#   PERF_DIR=/path/to/perf bash scripts/compare_official.sh deep-h16 3
#
# Cases (vsml_lite name: official arguments): fwd-h16 (--mode fwd --layers 10 --T 500),
# deep-h16 (--mode fwd --layers 32,10 --T 500), metagrad (--mode grad --layers 10 --T 100).
# PAUSE_PID: a process to stop (SIGSTOP) while measuring and continue afterwards, e.g. a
# background campaign; without it, both sides share the machine with whatever runs.
set -euo pipefail
cd "$(dirname "$0")/.."
case_name=${1:?usage: compare_official.sh CASE [ROUNDS]}
rounds=${2:-3}
: "${PERF_DIR:?set PERF_DIR (see ../shared/perf/README.md)}"
bench=${BENCH_OFFICIAL:-../shared/perf/bench_official.py}
case "$case_name" in
  fwd-h16) official=(--mode fwd --layers 10 --T 500); steps=500 ;;
  deep-h16) official=(--mode fwd --layers 32,10 --T 500); steps=500 ;;
  metagrad) official=(--mode grad --layers 10 --T 100); steps=100 ;;
  *) echo "unknown case $case_name; valid: fwd-h16 deep-h16 metagrad" >&2; exit 2 ;;
esac
if [ -n "${PAUSE_PID:-}" ]; then
  kill -STOP "$PAUSE_PID"
  trap 'kill -CONT "$PAUSE_PID"' EXIT
  sleep 1
fi
python=${PYTHON:-.venv/bin/python}
for r in $(seq "$rounds"); do
  o=$("$PERF_DIR/jaxenv/bin/python" "$bench" "${official[@]}" 2>/dev/null | tail -1 \
      | "$python" -c "import json, sys; print(round(json.load(sys.stdin)['ms_per_step'], 3))")
  m=$("$python" scripts/benchmark_network.py --cases "$case_name" --steps "$steps" 2>/dev/null \
      | awk -v c="$case_name" '$1 == c {print $3}')
  echo "round $r: $case_name official $o ms/step, vsml_lite (fused) $m ms/step, official / vsml_lite $("$python" -c "print(round($o / $m, 2))")"
done
