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

and what no implementation of the same computation can avoid beyond the matrix products:

  trans     the iteration's transcendental evaluations (sigmoid, tanh, exp, log: one per
            output element), counted on the same eager pass as the FLOPs; the fused kernel
            evaluates exactly as many (its tanh is a rescaled sigmoid)
  trans ms  those at the per-element time of torch.sigmoid over 4 Mi floats (best of 10), in
            the same process at the same thread count
  saved MB  what autograd saves for the backward pass on the real (fused) path, counted with
            torch.autograd.graph.saved_tensors_hooks; written in the forward, read in the
            backward
  mem ms    that traffic at the rate of a copy (one read and one write per byte, 64 MiB, best
            of 5). Recomputing the saved values instead would cost their transcendentals again.
            Under gradient checkpointing (meta-training) only what the checkpoints keep is
            seen, not what the recomputed chunks save, so there it undercounts
  bound     (floor + trans ms + mem ms) / floor: the ratio an implementation would reach that
            did nothing but the matrix products, the transcendentals and the saved-state
            traffic, each at its measured rate. Where it is above 2, issue 18's target is out
            of reach for this computation at these rates, not for want of a faster kernel (a
            sigmoid approximated more cheaply, at some loss of accuracy, would lower the bound)

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
from typing import Dict, Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode

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


#: aten ops whose every output element costs one transcendental evaluation (softmax: an exp).
TRANSCENDENTAL_OPS = ("sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "exp_", "log", "log_", "_softmax",
                      "_log_softmax")
#: Floats of the tensors that time torch.sigmoid (4 Mi, 16 MiB: past the caches, as the gates are).
RATE_FLOATS = 1 << 22
#: Bytes of the copy that times memory traffic (64 MiB).
COPY_BYTES = 1 << 26


class TranscendentalCounter(TorchDispatchMode):
    """Counts the output elements of :data:`TRANSCENDENTAL_OPS` while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__ in TRANSCENDENTAL_OPS:
            self.count += out.numel()
        return out


#: Cases whose eager pass does not fit in memory at full size (meta_vsml_paper: the eager
#: ticks keep every gate tensor of a 25-step checkpoint chunk of 32 episodes, over 20 GB) are
#: counted on this many episodes and scaled to the meta batch. Episodes are independent and
#: equal in work, so this is exact up to the optimiser's step on V_M (a few thousand FLOPs).
COUNT_EPISODES = {"meta_vsml_paper": 1}


def count_work(case: str, smoke: bool) -> Tuple[float, int]:
    """``(matrix FLOPs, transcendental evaluations)`` of one iteration, counted on the eager
    path."""
    from torch.utils.flop_counter import FlopCounterMode

    from vsml_lite import layer

    cfg, scale = _config(case, smoke), 1.0
    if case in COUNT_EPISODES and not smoke:
        scale = cfg.meta_learning.meta_batch / COUNT_EPISODES[case]
        cfg = cfg.override({"meta_learning.meta_batch": COUNT_EPISODES[case]})
    ok = layer._fused_ok
    layer._fused_ok = lambda *t: False  # the eager path: every matrix product a torch op
    try:
        task, first, _ = build(CASES[case][0], cfg)
        task.step(first)  # warm (lazy state, data caches) outside the count
        with FlopCounterMode(display=False) as counter, TranscendentalCounter() as trans:
            task.step(first + 1)
        return scale * counter.get_total_flops(), round(scale * trans.count)
    finally:
        layer._fused_ok = ok


def saved_bytes(task, iteration: int) -> int:
    """Bytes autograd saves for the backward pass over one step of ``task`` (the real path),
    each tensor once."""
    seen: Dict[Tuple[int, Tuple[int, ...]], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[(t.data_ptr(), tuple(t.shape))] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        task.step(iteration)
    return sum(seen.values())


def sigmoid_ns() -> float:
    """Nanoseconds per element of torch.sigmoid at this process's thread count (best of 10)."""
    x = torch.randn(RATE_FLOATS)
    out = torch.empty_like(x)
    return 1e9 * _best(lambda: torch.sigmoid(x, out=out), 10) / RATE_FLOATS


def copy_ms_per_mb() -> float:
    """Milliseconds to write and read back one MB: a copy of :data:`COPY_BYTES` (best of 5)."""
    src = torch.ones(COPY_BYTES // 4)
    dst = torch.empty_like(src)
    return 1000 * _best(lambda: dst.copy_(src), 5) / (COPY_BYTES / 1e6)


def _best(fn, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_ms(flops: float, repeats: int = 10) -> float:
    """The floor: ``flops`` at the rate of a square float32 matmul (n = :data:`FLOOR_MATMUL_N`),
    best of ``repeats``, in this process at its thread count. One fixed size gives a steady
    rate (a single matmul of the iteration's own FLOPs varied by 40% between runs)."""
    n = FLOOR_MATMUL_N
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 1000 * _best(lambda: a @ b, repeats) * flops / (2 * n ** 3)


def child(case: str, threads: int, smoke: bool, min_seconds: float, out: str) -> None:
    torch.set_num_threads(threads)
    vl.device.keep_freed_memory()  # as vsml_lite.training.run does on the CPU
    flops, trans = count_work(case, smoke)
    floor_before = matmul_ms(flops)
    task, it, _ = build(CASES[case][0], _config(case, smoke))
    for _ in range(2):  # warm-up
        task.step(it)
        it += 1
    saved = saved_bytes(task, it)
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
    trans_ms = trans * sigmoid_ns() / 1e6
    mem_ms = saved / 1e6 * copy_ms_per_mb()
    bound = floor + trans_ms + mem_ms
    Path(out).write_text(json.dumps({"case": case, "preset": "smoke" if smoke else CASES[case][1],
                                     "threads": threads, "ms": ms, "iterations_timed": len(times),
                                     "gflop": flops / 1e9, "floor_ms": floor, "ratio": ms / floor,
                                     "gflops_per_s": flops / 1e6 / ms, "transcendentals": trans,
                                     "transcendental_ms": trans_ms, "saved_mb": saved / 1e6,
                                     "saved_traffic_ms": mem_ms, "bound_ms": bound,
                                     "bound_ratio": bound / floor}))


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
    header = (f"{'case':<16} {'preset':<6} {'threads':>7} {'ms/iter':>10} {'GFLOP':>8} {'floor ms':>9} {'ratio':>6} "
              f"{'GFLOP/s':>8} {'trans M':>8} {'trans ms':>9} {'saved MB':>9} {'mem ms':>7} {'bound':>6}")
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
                    if proc.returncode < 0:  # a signal: SIGKILL is most often the kernel's OOM killer
                        reason = f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
                except subprocess.TimeoutExpired:
                    proc, reason = None, f"timed out after {args.case_timeout:.0f} s"
                if proc is None or proc.returncode:
                    records.append({"case": case, "threads": threads, "error": reason[-500:]})
                    print(f"{case:<16} {'':<6} {threads:>7} FAILED: {reason[-200:]}")
                    continue
                r = json.loads(Path(out).read_text())
                records.append(r)
                print(f"{case:<16} {r['preset']:<6} {threads:>7} {r['ms']:>10.2f} {r['gflop']:>8.3f} "
                      f"{r['floor_ms']:>9.2f} {r['ratio']:>6.1f} {r['gflops_per_s']:>8.1f} "
                      f"{r['transcendentals'] / 1e6:>8.1f} {r['transcendental_ms']:>9.1f} {r['saved_mb']:>9.1f} "
                      f"{r['saved_traffic_ms']:>7.1f} {r['bound_ratio']:>6.2f}")
    over = [r["case"] for r in records if r.get("threads") == 1 and r.get("ratio", 0) > TARGET_RATIO]
    print(f"\nat 1 thread, within {TARGET_RATIO:g}x of the floor: "
          + ("all measured cases" if not over else f"not {', '.join(over)}"))
    beyond = [r["case"] for r in records if r.get("threads") == 1 and r.get("bound_ratio", 0) > TARGET_RATIO]
    if beyond:
        print(f"out of reach at 1 thread (matrix floor + transcendentals + saved-state traffic alone exceed "
              f"{TARGET_RATIO:g}x the floor): {', '.join(beyond)}")
    if not args.smoke:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps({"device": name, "torch": torch.__version__,
                                        "code_version": vl.artifacts.code_version(), "records": records},
                                       indent=1) + "\n")
        print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
