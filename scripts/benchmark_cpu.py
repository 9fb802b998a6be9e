"""CPU throughput of the campaign's iterations against the floor their matrix arithmetic sets.

For each case (the Task step that vsml_lite.training.run repeats: forward, backward and the
optimiser step) and each thread count, a fresh child process measures:

  ms        wall time per iteration (after warm-up iterations)
  GFLOP     the iteration's matrix FLOPs, counted by torch.utils.flop_counter.FlopCounterMode
            over one iteration run through the readable eager path (the compiled kernel is a
            C++ function the counter cannot see; it does the same matrix products)
  floor     the iteration's FLOPs at the rate of a 1024 x 1024 float32 matmul (best of 10),
            measured in the same process at the same thread count
  ratio     ms / floor: how much the elementwise work (gates, transcendentals, passes over
            memory, allocation) costs beyond the matrix products; issue 18 asks for <= 2

Cases (the campaign runs them on one CPU thread):

  forward_cloning   Table 1 (paper preset): 32,768 sub-LSTMs of cell 32, one tick, Adam
  backprop_local    stage `local` of Chapter 4's curriculum at the paper preset (Table 1 batch)
  meta_vsml_cpu     one meta-training iteration of Chapter 5's VSML network, cpu preset
  meta_vsml_paper   the same at the paper preset (28 x 28 inputs, 32 episodes x 200 steps; slow)
  cmaes_cpu         one CMA-ES generation of Chapter 6, cpu preset at 100 inner steps

    python scripts/benchmark_cpu.py                                  # all but meta_vsml_paper
    python scripts/benchmark_cpu.py --cases forward_cloning --threads 1
    python scripts/benchmark_cpu.py --smoke                          # smoke preset, seconds

Stop other CPU work first (a background campaign: kill -STOP <pid>, then kill -CONT <pid>):
two processes on two cores halve each other's memory bandwidth. Writes
benchmarks/cpu-throughput-<cpu>.json with the code version.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import vsml_lite as vl
from benchmark_gpu import build, device_name

ROOT = Path(__file__).resolve().parent.parent
#: case -> (benchmark_gpu case it builds, preset); smoke runs every case at the smoke preset.
CASES = {"forward_cloning": ("forward_cloning", "paper"), "backprop_local": ("backprop_local", "paper"),
         "meta_vsml_cpu": ("meta_vsml", "cpu"), "meta_vsml_paper": ("meta_vsml", "paper"),
         "cmaes_cpu": ("cmaes_generation", "cpu")}
DEFAULT_CASES = ("forward_cloning", "backprop_local", "meta_vsml_cpu", "cmaes_cpu")
#: Side of the square matmul whose rate sets the floor (2.1 GFLOP: tens of milliseconds).
FLOOR_MATMUL_N = 1024
#: Learner steps per candidate in the timed CMA-ES generation: the cpu preset's until it went
#: to 1,000 (a generation of those takes minutes; tables stay comparable across versions).
CMAES_INNER_STEPS = 100
#: Issue 18's target: every iteration within this factor of its floor at one thread.
TARGET_RATIO = 2.0


def _config(case: str, smoke: bool) -> vl.Config:
    built, preset = CASES[case]
    cfg = vl.get_config("smoke" if smoke else preset).override({"device": "cpu", "compile": "off"})
    if case == "cmaes_cpu" and not smoke:  # time and FLOPs grow linearly with the inner steps
        cfg = cfg.override({"improve.inner_steps": CMAES_INNER_STEPS})
    return cfg


def count_flops(case: str, smoke: bool) -> float:
    """Matrix FLOPs of one iteration, counted on the eager path."""
    from torch.utils.flop_counter import FlopCounterMode

    from vsml_lite import layer

    ok = layer._fused_ok
    layer._fused_ok = lambda *t: False  # the eager path: every matrix product a torch op
    try:
        task, first, _ = build(CASES[case][0], _config(case, smoke))
        task.step(first)  # warm (lazy state, data caches) outside the count
        with FlopCounterMode(display=False) as counter:
            task.step(first + 1)
        return float(counter.get_total_flops())
    finally:
        layer._fused_ok = ok


def matmul_ms(flops: float, repeats: int = 10) -> float:
    """The floor: ``flops`` at the rate of a square float32 matmul (n = :data:`FLOOR_MATMUL_N`),
    best of ``repeats``, in this process at its thread count. One fixed size gives a steady
    rate (a single matmul of the iteration's own FLOPs varied by 40% between runs)."""
    n = FLOOR_MATMUL_N
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 1000 * best * flops / (2 * n ** 3)


def child(case: str, threads: int, smoke: bool, min_seconds: float, out: str) -> None:
    torch.set_num_threads(threads)
    vl.device.keep_freed_memory()  # as vsml_lite.training.run does on the CPU
    flops = count_flops(case, smoke)
    floor_before = matmul_ms(flops)
    task, it, _ = build(CASES[case][0], _config(case, smoke))
    for _ in range(2):  # warm-up
        task.step(it)
        it += 1
    times = []
    began = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - began < min_seconds:
        t = time.perf_counter()
        task.step(it)
        times.append(time.perf_counter() - t)
        it += 1
    ms = 1000 * sorted(times)[len(times) // 2]  # median
    floor = min(floor_before, matmul_ms(flops))  # the machine's rate drifts: the better of two
    Path(out).write_text(json.dumps({"case": case, "preset": "smoke" if smoke else CASES[case][1],
                                     "threads": threads, "ms": ms, "iterations_timed": len(times),
                                     "gflop": flops / 1e9, "floor_ms": floor, "ratio": ms / floor,
                                     "gflops_per_s": flops / 1e6 / ms}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=list(DEFAULT_CASES), choices=list(CASES))
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--smoke", action="store_true", help="smoke preset (CI: checks the script runs)")
    parser.add_argument("--min-seconds", type=float, default=None, help="timed seconds per case (default 5)")
    parser.add_argument("--case-timeout", type=float, default=1800.0)
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/cpu-throughput-<cpu>.json)")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "THREADS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    min_seconds = args.min_seconds if args.min_seconds is not None else (0.0 if args.smoke else 5.0)
    if args.child:
        case, threads, out = args.child
        child(case, int(threads), args.smoke, min_seconds, out)
        return 0

    name = device_name("cpu")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
    out_path = Path(args.out) if args.out else ROOT / "benchmarks" / f"cpu-throughput-{slug}.json"
    print(f"CPU throughput on {name}; torch {torch.__version__}, code {vl.artifacts.code_version()}, "
          f"fused kernel {'on' if vl.fused.available() else 'off'}")
    header = f"{'case':<16} {'preset':<6} {'threads':>7} {'ms/iter':>10} {'GFLOP':>8} {'floor ms':>9} {'ratio':>6} {'GFLOP/s':>8}"
    print(header)
    print("-" * len(header))
    records = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            for threads in args.threads:
                out = str(Path(tmp) / f"{case}-{threads}.json")
                env["OMP_NUM_THREADS"] = str(threads)
                cmd = [sys.executable, __file__, "--min-seconds", str(min_seconds), *(["--smoke"] if args.smoke else []),
                       "--child", case, str(threads), out]
                try:
                    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.case_timeout)
                    reason = proc.stderr.strip().splitlines()[-1] if proc.returncode and proc.stderr.strip() else ""
                except subprocess.TimeoutExpired:
                    proc, reason = None, f"timed out after {args.case_timeout:.0f} s"
                if proc is None or proc.returncode:
                    records.append({"case": case, "threads": threads, "error": reason[-500:]})
                    print(f"{case:<16} {'':<6} {threads:>7} FAILED: {reason[-200:]}")
                    continue
                r = json.loads(Path(out).read_text())
                records.append(r)
                print(f"{case:<16} {r['preset']:<6} {threads:>7} {r['ms']:>10.2f} {r['gflop']:>8.3f} "
                      f"{r['floor_ms']:>9.2f} {r['ratio']:>6.1f} {r['gflops_per_s']:>8.1f}")
    over = [r["case"] for r in records if r.get("threads") == 1 and r.get("ratio", 0) > TARGET_RATIO]
    print(f"\nat 1 thread, within {TARGET_RATIO:g}x of the floor: "
          + ("all measured cases" if not over else f"not {', '.join(over)}"))
    if not args.smoke:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps({"device": name, "torch": torch.__version__,
                                        "code_version": vl.artifacts.code_version(), "records": records},
                                       indent=1) + "\n")
        print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
