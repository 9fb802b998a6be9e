"""Where the fused kernel's forward time goes, measured by taking parts out (issue 18).

The CPU benchmark (scripts/benchmark_cpu.py) compares each iteration with a floor that counts
matrix FLOPs only, at the rate of a large matmul. This script asks why the kernel stays above
it. It compiles two variants of the kernel source beside the real one and times the forward
pass (with the saving that autograd needs) at the campaign's shapes:

  kernel           the fused kernel as shipped
  no sigmoid       every sigmoid and tanh replaced by a multiply-add (no transcendentals)
  no recurrence    the recurrent product h @ w_hid left out
  product (BLAS)   the same recurrent product as one matmul, [N, H] @ [H, 4H] per tick
  memory pass      writing the tensors the forward saves for the backward (fill_)

The variants compute wrong numbers on purpose; they exist to be timed, never used.

    python scripts/kernel_costs.py            # one thread, a few minutes (three compiles)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import torch

import vsml_lite as vl
from vsml_lite import fused

#: (label, N sub-LSTMs, H, ticks): forward cloning (Table 1 batch, one tick), backprop
#: cloning's stage `local` (two ticks a phase), and Chapter 5's cpu-preset grid (16 episodes of
#: a 49 x 10 grid, two micro ticks).
SHAPES = (("forward cloning", 32768, 32, 1), ("backprop local", 32768, 32, 2), ("meta cpu grid", 7840, 16, 2))
SIGMOID = "static inline v8f sigm(v8f x) { return splat(1.0f) / (splat(1.0f) + exp_poly(-x)); }"
RECURRENCE = "        gates[k] += hj * wk;"


def variant(name: str, source: str, build: str):
    from torch.utils.cpp_extension import load_inline
    path = os.path.join(build, name)
    os.makedirs(path, exist_ok=True)
    return load_inline(name=f"vsml_costs_{name}", build_directory=path, cpp_sources=[source],
                       functions=["cell_forward"], extra_cflags=["-O3", "-march=native", "-fopenmp", "-Wno-psabi"],
                       extra_ldflags=["-fopenmp"], verbose=False)


def median_ms(fn, repeats: int = 15) -> float:
    fn(), fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * sorted(times)[repeats // 2]


def main() -> int:
    torch.set_num_threads(1)
    vl.device.keep_freed_memory()
    src = fused._SOURCE
    assert src.count(SIGMOID) == 1 and src.count(RECURRENCE) == 1, "kernel source changed; update the variants"
    with tempfile.TemporaryDirectory() as build:
        modules = {"kernel": fused._load(),
                   "no sigmoid": variant("nosig", src.replace(SIGMOID, "static inline v8f sigm(v8f x) "
                                                              "{ return x * splat(0.25f) + splat(0.5f); }"), build),
                   "no recurrence": variant("norec", src.replace(RECURRENCE, "        (void)hj; (void)wk;"), build)}
        print(f"forward pass with saving, one thread, ms (code {vl.artifacts.code_version()})")
        print(f"{'shape':<16} {'N x ticks':>12} {'kernel':>8} {'no sigmoid':>11} {'no recurrence':>14} "
              f"{'product (BLAS)':>15} {'memory pass':>12}")
        gen = torch.Generator().manual_seed(0)
        for label, N, H, T in SHAPES:
            G, M = 4 * H, 8
            fwd = torch.zeros(N, M)
            fwd[:, 0] = torch.randn(N, generator=gen)
            bwd = torch.zeros(N, M)
            w_in = [torch.randn(M, G, generator=gen) * 0.3 for _ in range(2)]
            bias, w_hid = torch.randn(G, generator=gen) * 0.1, torch.randn(H, G, generator=gen) / H ** 0.5
            h, c = torch.rand(N, H, generator=gen) - 0.5, torch.randn(N, H, generator=gen)
            row = [median_ms(lambda m=m: m.cell_forward(fwd, bwd, *w_in, bias, w_hid, h, c, T, 4.0, True))
                   for m in modules.values()]
            product = T * median_ms(lambda: h @ w_hid)
            saved = torch.empty(T * N * (G + 2 * H))
            memory = median_ms(lambda: saved.fill_(1.0))
            print(f"{label:<16} {N:>7,} x {T:<2} {row[0]:>8.2f} {row[1]:>11.2f} {row[2]:>14.2f} "
                  f"{product:>15.2f} {memory:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
