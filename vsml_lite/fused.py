"""A compiled CPU kernel that runs all micro ticks of a dense VSML layer in one pass.

On a CPU the cost of a VSML step is the elementwise gate math of ``A·B`` tiny LSTMs, not the
matrix products: in eager PyTorch every gate operation reads and writes the whole
``[A, B, 4H]`` tensor. This kernel instead walks the grid once per layer and step: for each
sub-LSTM it keeps ``h``, ``c`` and its ``4H`` gates in registers/L1 while it runs every micro
tick, then writes the state back. Rows ``a`` of the grid are spread over torch's intra-op
threads (``torch.set_num_threads``).

It computes exactly what the eager fast path of :func:`vsml_lite.network.dense_ticks`
computes (same folded gate scale and biases), for float32 CPU tensors outside autograd (it has
no backward); everything else uses the eager path. It is compiled on first use with
``torch.utils.cpp_extension.load_inline`` (needs a C++ compiler and ``ninja``; about a minute,
then cached). Set ``VSML_FUSED=0`` to disable it; if compiling fails a warning says why and the
eager path is used.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Optional, Tuple

import torch

#: Environment variable that disables the kernel when set to 0.
FUSED_ENV_VAR = "VSML_FUSED"

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cstdint>
#include <cstring>
#include <vector>


// Eight floats processed together; GCC and Clang map this to AVX2 (or to pairs of SSE
// registers where AVX2 is missing), so the gate math below is vectorised explicitly.
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f splat(float x) { return v8f{x, x, x, x, x, x, x, x}; }

// exp(x) = 2^k * 2^f with k = floor(x / ln 2) and f in [0, 1); 2^f by a degree-6 polynomial
// (relative error ~2e-7, below float32 rounding of the results it feeds).
static inline v8f exp_poly(v8f x) {
  x = x < splat(-87.0f) ? splat(-87.0f) : x;
  x = x > splat(88.0f) ? splat(88.0f) : x;
  const v8f t = x * splat(1.4426950408889634f);  // x / ln 2
  v8i k = __builtin_convertvector(t, v8i);          // rounds toward zero
  v8f kf = __builtin_convertvector(k, v8f);
  const v8i below = kf > t;                          // -1 where truncation went up
  k = k + below;
  kf = __builtin_convertvector(k, v8f);
  const v8f f = t - kf;
  v8f p = splat(1.535336188319500e-4f);
  p = p * f + splat(1.339887440266574e-3f);
  p = p * f + splat(9.618437357674640e-3f);
  p = p * f + splat(5.550332471162809e-2f);
  p = p * f + splat(2.402264791363012e-1f);
  p = p * f + splat(6.931472028550421e-1f);
  p = p * f + splat(1.0f);
  const v8i bits = (k + 127) << 23;  // 2^k as floats
  v8f scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

static inline v8f sigm(v8f x) { return splat(1.0f) / (splat(1.0f) + exp_poly(-x)); }

// One sub-LSTM, every micro tick. The G = 4H gate pre-activations are ordered input, cell
// candidate (pre-scaled by 2, since tanh(g) = 2 sigmoid(2g) - 1), forget, output, with the
// biases already folded into pa/pb. h and c are updated in place.
template <int H>
static inline void sub_lstm_ticks(const float* pa, const float* pb, const float* w, float* h,
                                  float* c, int64_t ticks, bool clip, float bound) {
  constexpr int G = 4 * H, V = G / 8, HV = H / 8;
  v8f gates[V], hv[HV], cv[HV], base[V];
  std::memcpy(hv, h, sizeof(hv));
  std::memcpy(cv, c, sizeof(cv));
  for (int k = 0; k < V; ++k) {
    v8f a, b;
    std::memcpy(&a, pa + 8 * k, sizeof(a));
    std::memcpy(&b, pb + 8 * k, sizeof(b));
    base[k] = a + b;  // the input projection, fixed during the micro ticks
  }
  for (int64_t t = 0; t < ticks; ++t) {
    for (int k = 0; k < V; ++k) gates[k] = base[k];
    for (int j = 0; j < H; ++j) {  // gates += h @ w_hid
      const v8f hj = splat(h[j]);
      for (int k = 0; k < V; ++k) {
        v8f wk;
        std::memcpy(&wk, w + j * G + 8 * k, sizeof(wk));
        gates[k] += hj * wk;
      }
    }
    for (int k = 0; k < V; ++k) gates[k] = sigm(gates[k]);
    for (int j = 0; j < HV; ++j) {
      v8f cj = gates[2 * HV + j] * cv[j] + gates[j] * (splat(2.0f) * gates[HV + j] - splat(1.0f));
      if (clip) {
        cj = cj < splat(-bound) ? splat(-bound) : cj;
        cj = cj > splat(bound) ? splat(bound) : cj;
      }
      cv[j] = cj;
      hv[j] = gates[3 * HV + j] * (splat(2.0f) * sigm(splat(2.0f) * cj) - splat(1.0f));
    }
    std::memcpy(h, hv, sizeof(hv));  // the next tick's matvec reads h as scalars
  }
  std::memcpy(c, cv, sizeof(cv));
}

template <int H>
static void run(const float* fa, const float* fb, const float* w, const float* h_in,
                const float* c_in, float* h_out, float* c_out, int64_t n, int64_t A, int64_t B,
                int64_t ticks, bool clip, float bound) {
  constexpr int G = 4 * H;
  at::parallel_for(0, n * A, 8, [&](int64_t begin, int64_t end) {
    for (int64_t na = begin; na < end; ++na) {
      const int64_t batch = na / A;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t off = (na * B + b) * H;
        std::memcpy(h_out + off, h_in + off, H * sizeof(float));
        std::memcpy(c_out + off, c_in + off, H * sizeof(float));
        sub_lstm_ticks<H>(fa + na * G, fb + (batch * B + b) * G, w, h_out + off, c_out + off,
                          ticks, clip, bound);
      }
    }
  });
}

std::vector<torch::Tensor> dense_ticks(torch::Tensor from_a, torch::Tensor from_b,
                                       torch::Tensor w_hid, torch::Tensor h, torch::Tensor c,
                                       int64_t ticks, double clip) {
  auto fa = from_a.contiguous(), fb = from_b.contiguous(), w = w_hid.contiguous();
  auto hi = h.contiguous(), ci = c.contiguous();
  auto ho = torch::empty_like(hi), co = torch::empty_like(ci);
  const int64_t n = hi.size(0), A = hi.size(1), B = hi.size(2), H = hi.size(3);
  const bool use_clip = clip > 0;
  const float bound = static_cast<float>(clip);
#define VSML_RUN(HH) run<HH>(fa.data_ptr<float>(), fb.data_ptr<float>(), w.data_ptr<float>(), \
    hi.data_ptr<float>(), ci.data_ptr<float>(), ho.data_ptr<float>(), co.data_ptr<float>(), \
    n, A, B, ticks, use_clip, bound)
  switch (H) {
    case 8: VSML_RUN(8); break;
    case 16: VSML_RUN(16); break;
    case 32: VSML_RUN(32); break;
    case 64: VSML_RUN(64); break;
    default: TORCH_CHECK(false, "fused dense_ticks supports hidden sizes 8, 16, 32, 64; got ", H);
  }
#undef VSML_RUN
  return {ho, co};
}
"""

#: Hidden sizes the kernel is instantiated for.
SUPPORTED_HIDDEN = (8, 16, 32, 64)

_module = None  # the compiled extension, loaded on first use
_failed: Optional[str] = None  # why compiling failed, once it has


def available() -> bool:
    """Whether the kernel can be used (compiling it on the first call)."""
    return _load() is not None


def _load():
    global _module, _failed
    if _module is not None or _failed is not None:
        return _module
    if os.environ.get(FUSED_ENV_VAR, "1") == "0":
        _failed = f"disabled by {FUSED_ENV_VAR}=0"
        return None
    try:
        # cpp_extension logs a warning about CUDA_HOME at import on CPU-only machines; it does
        # not concern this CPU kernel, so keep it out of notebooks and test logs.
        quiet = logging.getLogger("torch.utils.cpp_extension")
        level, quiet.level = quiet.level, logging.ERROR
        try:
            from torch.utils.cpp_extension import load_inline
        finally:
            quiet.setLevel(level)

        _module = load_inline(
            name="vsml_lite_fused",
            cpp_sources=[_SOURCE],
            functions=["dense_ticks"],
            extra_cflags=["-O3", "-march=native", "-fopenmp", "-Wno-psabi"],
            extra_ldflags=["-fopenmp"],  # at::parallel_for spreads rows over OpenMP threads
            verbose=False,
        )
    except Exception as err:  # no compiler, no ninja, read-only cache, ...
        _failed = f"{type(err).__name__}: {err}"
        warnings.warn(f"vsml_lite.fused: compiling the CPU kernel failed, using the eager path ({_failed})")
    return _module


def dense_ticks(
    from_a: torch.Tensor,
    from_b: torch.Tensor,
    w_hid: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    micro_ticks: int,
    state_clip: Optional[float] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """All micro ticks of a dense layer in the compiled kernel.

    Args:
        from_a: ``[n, A, 4H]`` input projection per input neuron (gate scale folded in).
        from_b: ``[n, B, 4H]`` input projection per output neuron, plus bias and gate biases.
        w_hid: ``[H, 4H]`` recurrent weights (gate scale folded in).
        h, c: ``[n, A, B, H]`` states (not modified).
        micro_ticks: LSTM ticks.
        state_clip: clip ``c`` to ``[-clip, clip]`` after every tick, or ``None``.

    Returns:
        New ``(h, c)``, ``[n, A, B, H]`` each.
    """
    module = _load()
    if module is None:
        raise RuntimeError(f"the fused kernel is not available ({_failed})")
    if h.shape[-1] not in SUPPORTED_HIDDEN:
        raise ValueError(f"fused kernel supports hidden sizes {SUPPORTED_HIDDEN}, got {h.shape[-1]}")
    clip = float(state_clip) if state_clip is not None else 0.0
    h_new, c_new = module.dense_ticks(from_a, from_b, w_hid, h, c, int(micro_ticks), clip)
    return h_new, c_new
