"""A compiled CPU kernel that runs all micro ticks of a dense VSML layer in one pass, with
its own backward pass.

On a CPU the cost of a VSML step is the elementwise gate math of ``A·B`` tiny LSTMs, not the
matrix products: in eager PyTorch every gate operation reads and writes the whole
``[A, B, 4H]`` tensor (and autograd stores and re-reads each of them). This kernel instead
walks the grid once per layer and step: for each sub-LSTM it keeps ``h``, ``c`` and its ``4H``
gates in registers while it runs every micro tick, then writes the state back. Under autograd
it also saves the gates, pre-clip cell states and hidden inputs of every tick, and a second
kernel runs the ticks backwards from them. Rows of the grid are spread over torch's intra-op
threads (``torch.set_num_threads``).

Grids of one sub-LSTM per example (``A = B = 1``: the cloning runs of Chapters 3 and 4, 32,768
sub-LSTMs a batch) have their own pair of kernels (:func:`cell_ticks`): the forward also makes
the input projection from the ``M``-wide messages, and the backward adds the gate gradients
into the weight gradients block by block while they are in cache, so that no ``[N, 4H]``
tensor of projections or gate gradients is written and read back.

It computes exactly what the eager fast path of :func:`vsml_lite.network.dense_ticks`
computes (same folded gate scale and biases) for float32 CPU tensors; tests hold its outputs
and its gradients equal to the eager ones. It is compiled on first use with
``torch.utils.cpp_extension.load_inline`` (needs a C++ compiler and ``ninja``; about half a
minute, then cached). Set ``VSML_FUSED=0`` (or ``false``) to disable it; if compiling fails a
warning says why and the eager path is used; a damaged cached library is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import sys
import warnings
from typing import Optional, Tuple

import torch

from .validate import FALSE_WORDS, check_count, check_state_clip, check_tensor, file_sha256

#: Environment variable that disables the kernel when set to 0.
FUSED_ENV_VAR = "VSML_FUSED"

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <mutex>
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
// biases already folded into pa/pb. h and c are updated in place. With SAVE, what the
// backward pass needs is written per tick t: the squashed gates (sv + t * tstride * G), the
// cell state before clipping (cv_pre + t * tstride * H) and the hidden state the tick read
// (hv_in + t * tstride * H).
// base holds the input projection, fixed during the micro ticks.
template <int H, bool SAVE>
static inline void sub_lstm_ticks_from(const v8f* base, const float* w, float* h, float* c,
                                       int64_t ticks, bool clip, float bound, float* sv,
                                       float* cv_pre, float* hv_in, int64_t tstride) {
  constexpr int G = 4 * H, V = G / 8, HV = H / 8;
  v8f gates[V], hv[HV], cv[HV];
  std::memcpy(hv, h, sizeof(hv));
  std::memcpy(cv, c, sizeof(cv));
  for (int64_t t = 0; t < ticks; ++t) {
    if (SAVE) std::memcpy(hv_in + t * tstride * H, h, H * sizeof(float));
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
    if (SAVE) std::memcpy(sv + t * tstride * G, gates, sizeof(gates));
    for (int j = 0; j < HV; ++j) {
      v8f cj = gates[2 * HV + j] * cv[j] + gates[j] * (splat(2.0f) * gates[HV + j] - splat(1.0f));
      if (SAVE) std::memcpy(cv_pre + t * tstride * H + 8 * j, &cj, sizeof(cj));
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

// A sub-LSTM of a grid: its input projection is pa (its row's) + pb (its column's).
template <int H, bool SAVE>
static inline void sub_lstm_ticks(const float* pa, const float* pb, const float* w, float* h,
                                  float* c, int64_t ticks, bool clip, float bound, float* sv,
                                  float* cv_pre, float* hv_in, int64_t tstride) {
  constexpr int V = 4 * H / 8;
  v8f base[V];
  for (int k = 0; k < V; ++k) {
    v8f a, b;
    std::memcpy(&a, pa + 8 * k, sizeof(a));
    std::memcpy(&b, pb + 8 * k, sizeof(b));
    base[k] = a + b;
  }
  sub_lstm_ticks_from<H, SAVE>(base, w, h, c, ticks, clip, bound, sv, cv_pre, hv_in, tstride);
}

// A sub-LSTM that reads its own messages (a 1 x 1 grid per example, Chapters 3 and 4): its
// input projection bias + fwd @ w_fwd + bwd @ w_bwd is made here, in registers, instead of
// being written to and read back from two [N, 4H] tensors. Message entries that are zero (most
// of them: a message carries one input or one error) are skipped.
template <int H>
static inline void cell_projection(const float* fwd, const float* bwd, const float* w_fwd,
                                   const float* w_bwd, const float* bias, int64_t M, v8f* base) {
  constexpr int G = 4 * H, V = G / 8;
  std::memcpy(base, bias, V * sizeof(v8f));
  for (int pass = 0; pass < 2; ++pass) {
    const float* x = pass == 0 ? fwd : bwd;
    const float* w = pass == 0 ? w_fwd : w_bwd;
    for (int64_t j = 0; j < M; ++j) {
      if (x[j] == 0.0f) continue;
      const v8f xj = splat(x[j]);
      for (int k = 0; k < V; ++k) {
        v8f wk;
        std::memcpy(&wk, w + j * G + 8 * k, sizeof(wk));
        base[k] += xj * wk;
      }
    }
  }
}

static inline v8f clamp8(v8f x, float bound) {
  x = x < splat(-bound) ? splat(-bound) : x;
  return x > splat(bound) ? splat(bound) : x;
}

// Backward through every micro tick of one sub-LSTM (reverse order), from the saved values
// (tick t's at offset t * tstride rows). wt is w_hid transposed, [G, H]. dh_src, dc_src are
// the gradients of the outputs (nullptr: zeros); dh, dc receive those of the inputs; dgates + t * dstride * G
// receives the gradient of tick t's gate pre-activations.
template <int H>
static inline void sub_lstm_backward(const float* wt, const float* sv, const float* cv_pre,
                                     const float* c_in, const float* dh_src,
                                     const float* dc_src, float* dh, float* dc, float* dgates,
                                     int64_t ticks, bool clip, float bound, int64_t tstride,
                                     int64_t dstride) {
  constexpr int G = 4 * H, HV = H / 8;
  v8f dhv[HV], dcv[HV];
  for (int j = 0; j < HV; ++j) dhv[j] = dcv[j] = splat(0.0f);
  if (dh_src != nullptr) std::memcpy(dhv, dh_src, sizeof(dhv));
  if (dc_src != nullptr) std::memcpy(dcv, dc_src, sizeof(dcv));
  const v8f one = splat(1.0f), two = splat(2.0f);
  for (int64_t t = ticks - 1; t >= 0; --t) {
    const float* s = sv + t * tstride * G;
    alignas(32) float dg[G];
    for (int j = 0; j < HV; ++j) {
      v8f i, sg, f, o, pre, prev;
      std::memcpy(&i, s + 8 * j, sizeof(i));
      std::memcpy(&sg, s + H + 8 * j, sizeof(sg));
      std::memcpy(&f, s + 2 * H + 8 * j, sizeof(f));
      std::memcpy(&o, s + 3 * H + 8 * j, sizeof(o));
      std::memcpy(&pre, cv_pre + t * tstride * H + 8 * j, sizeof(pre));
      if (t == 0) {
        std::memcpy(&prev, c_in + 8 * j, sizeof(prev));
      } else {
        std::memcpy(&prev, cv_pre + (t - 1) * tstride * H + 8 * j, sizeof(prev));
        if (clip) prev = clamp8(prev, bound);
      }
      const v8f post = clip ? clamp8(pre, bound) : pre;
      const v8f tc = two * sigm(two * post) - one;  // tanh(c)
      const v8f g = two * sg - one;                 // tanh of the candidate
      const v8f dout = dhv[j] * tc;                 // h = o * tanh(c)
      v8f dpost = dcv[j] + dhv[j] * o * (one - tc * tc);
      if (clip) {  // clamp passes gradient only inside [-bound, bound], as torch.clamp does
        const v8i outside = (pre < splat(-bound)) | (pre > splat(bound));
        dpost = outside ? splat(0.0f) : dpost;
      }
      const v8f di = dpost * g, dcand = dpost * i, dfg = dpost * prev;  // c = f c' + i g
      dcv[j] = dpost * f;
      const v8f gi = di * i * (one - i), gg = dcand * two * sg * (one - sg);
      const v8f gf = dfg * f * (one - f), go = dout * o * (one - o);
      std::memcpy(dg + 8 * j, &gi, sizeof(gi));
      std::memcpy(dg + H + 8 * j, &gg, sizeof(gg));
      std::memcpy(dg + 2 * H + 8 * j, &gf, sizeof(gf));
      std::memcpy(dg + 3 * H + 8 * j, &go, sizeof(go));
    }
    std::memcpy(dgates + t * dstride * G, dg, sizeof(dg));
    for (int j = 0; j < HV; ++j) dhv[j] = splat(0.0f);  // dh of tick t's input = W dg
    for (int k = 0; k < G; ++k) {
      const v8f gk = splat(dg[k]);
      for (int j = 0; j < HV; ++j) {
        v8f wv;
        std::memcpy(&wv, wt + k * H + 8 * j, sizeof(wv));
        dhv[j] += gk * wv;
      }
    }
  }
  std::memcpy(dh, dhv, sizeof(dhv));
  std::memcpy(dc, dcv, sizeof(dcv));
}

template <int H>
static void run(const float* fa, const float* fb, const float* w, const float* h_in,
                const float* c_in, float* h_out, float* c_out, int64_t n, int64_t A, int64_t B,
                int64_t ticks, bool clip, float bound, float* sv, float* cv_pre, float* hv_in) {
  constexpr int G = 4 * H;
  const int64_t N = n * A * B;  // saved tensors are [ticks, N, ...]
  at::parallel_for(0, n * A, 8, [&](int64_t begin, int64_t end) {
    for (int64_t na = begin; na < end; ++na) {
      const int64_t batch = na / A;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t m = na * B + b, off = m * H;
        std::memcpy(h_out + off, h_in + off, H * sizeof(float));
        std::memcpy(c_out + off, c_in + off, H * sizeof(float));
        if (sv != nullptr) {
          sub_lstm_ticks<H, true>(fa + na * G, fb + (batch * B + b) * G, w, h_out + off,
                                  c_out + off, ticks, clip, bound, sv + m * G, cv_pre + off,
                                  hv_in + off, N);
        } else {
          sub_lstm_ticks<H, false>(fa + na * G, fb + (batch * B + b) * G, w, h_out + off,
                                   c_out + off, ticks, clip, bound, nullptr, nullptr, nullptr, N);
        }
      }
    }
  });
}

// One sub-LSTM per example, reading its own messages fwd [N, M] and bwd [N, M].
template <int H>
static void run_cell(const float* fwd, const float* bwd, const float* w_fwd, const float* w_bwd,
                     const float* bias, const float* w, const float* h_in, const float* c_in,
                     float* h_out, float* c_out, int64_t N, int64_t M, int64_t ticks, bool clip,
                     float bound, float* sv, float* cv_pre, float* hv_in) {
  constexpr int G = 4 * H, V = G / 8;
  at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      v8f base[V];
      cell_projection<H>(fwd + m * M, bwd + m * M, w_fwd, w_bwd, bias, M, base);
      std::memcpy(h_out + m * H, h_in + m * H, H * sizeof(float));
      std::memcpy(c_out + m * H, c_in + m * H, H * sizeof(float));
      if (sv != nullptr) {
        sub_lstm_ticks_from<H, true>(base, w, h_out + m * H, c_out + m * H, ticks, clip, bound,
                                     sv + m * G, cv_pre + m * H, hv_in + m * H, N);
      } else {
        sub_lstm_ticks_from<H, false>(base, w, h_out + m * H, c_out + m * H, ticks, clip, bound,
                                      nullptr, nullptr, nullptr, N);
      }
    }
  });
}

// Floats of gate gradients per block of the backward kernels (256 KiB): a block stays in cache
// between the kernel that writes it and the matrix products that add it into the weight
// gradients, and is large enough that the products' call overhead (a few microseconds each)
// stays small beside their work. A block holds this many floats over (rows x ticks x 4H).
constexpr int64_t BLOCK_FLOATS = 1 << 16;

// Sub-LSTMs per block: at H = 32 and one tick, 512.
static inline int64_t block_rows(int64_t ticks, int64_t G) {
  return std::max<int64_t>(1, BLOCK_FLOATS / (std::max<int64_t>(ticks, 1) * G));
}

// w += a^T b over the first `rows` rows of a and b, with views made only for a partial block.
static inline void add_products(torch::Tensor& w, const torch::Tensor& a, const torch::Tensor& b,
                                int64_t rows) {
  if (rows == a.size(0)) {
    w.addmm_(a.t(), b);
  } else {
    w.addmm_(a.narrow(0, 0, rows).t(), b.narrow(0, 0, rows));
  }
}

// The step both backward kernels share, for sub-LSTMs m0 .. m0 + R - 1: their gate gradients
// into the block dg ([T, R, 4H]), their input states' gradients into dh and dc, and the
// block's share of the recurrent weights' gradient added into acc_hid (hr receives the hidden
// states those ticks read, in dg's order).
template <int H>
static inline void backward_block(const float* wt, const float* sv, const float* cv_pre,
                                  const float* h_read, const float* c_in, const float* dh_src,
                                  const float* dc_src, float* dh, float* dc, int64_t N,
                                  int64_t m0, int64_t R, int64_t ticks, bool clip, float bound,
                                  torch::Tensor& dg, torch::Tensor& hr, torch::Tensor& acc_hid) {
  constexpr int G = 4 * H;
  float *dgp = dg.data_ptr<float>(), *hrp = hr.data_ptr<float>();
  for (int64_t r = 0; r < R; ++r) {
    const int64_t m = m0 + r;
    sub_lstm_backward<H>(wt, sv + m * G, cv_pre + m * H, c_in + m * H,
                         dh_src ? dh_src + m * H : nullptr, dc_src ? dc_src + m * H : nullptr,
                         dh + m * H, dc + m * H, dgp + r * G, ticks, clip, bound, N, R);
  }
  for (int64_t t = 0; t < ticks; ++t)
    std::memcpy(hrp + t * R * H, h_read + (t * N + m0) * H, R * H * sizeof(float));
  add_products(acc_hid, hr, dg, ticks * R);
}

// Row r of a block's gate gradients summed over the ticks, into out [G]: the input
// projection is the same every tick.
template <int G>
static inline void tick_sum(const float* dgp, int64_t R, int64_t r, int64_t ticks, float* out) {
  std::memset(out, 0, G * sizeof(float));
  for (int64_t t = 0; t < ticks; ++t) {
    const float* d = dgp + (t * R + r) * G;
    for (int k = 0; k < G; ++k) out[k] += d[k];
  }
}

// Backward of run (a dense layer's grid [n, A, B]). Each sub-LSTM's gate gradients, summed
// over the ticks, are added at once into the projection gradients of its row (d_from_a
// [n, A, 4H]) and its column (d_from_b [n, B, 4H]), and multiplied into the recurrent weights'
// gradient block by block while in cache (as run_cell_backward does): no [T, N, 4H] tensor is
// written, summed over the ticks and summed again over the grid. Episodes are spread over the
// threads, so each thread owns the rows and columns it adds into.
template <int H>
static void run_grid_backward(const float* wt, const float* sv, const float* cv_pre,
                              const float* h_read, const float* c_in, const float* dh_src,
                              const float* dc_src, float* dh, float* dc, int64_t n, int64_t A,
                              int64_t B, int64_t ticks, bool clip, float bound, float* d_from_a,
                              float* d_from_b, torch::Tensor& dw_hid) {
  constexpr int G = 4 * H;
  const int64_t N = n * A * B, T = std::max<int64_t>(ticks, 1), rows = block_rows(ticks, G);
  const auto opts = dw_hid.options();
  std::mutex merge;
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // worker threads do not inherit the caller's grad mode
    auto acc_hid = torch::zeros({H, G}, opts);
    auto dg = torch::empty({T * rows, G}, opts);  // the block's [T, R, G] gate gradients
    auto hr = torch::empty({T * rows, H}, opts);  // the hidden states those ticks read
    const float* dgp = dg.data_ptr<float>();
    alignas(32) float per_sub[G];
    std::memset(d_from_a + begin * A * G, 0, (end - begin) * A * G * sizeof(float));
    std::memset(d_from_b + begin * B * G, 0, (end - begin) * B * G * sizeof(float));
    const int64_t m_end = end * A * B;
    for (int64_t m0 = begin * A * B; m0 < m_end; m0 += rows) {
      const int64_t R = std::min(rows, m_end - m0);
      backward_block<H>(wt, sv, cv_pre, h_read, c_in, dh_src, dc_src, dh, dc, N, m0, R, ticks, clip,
                        bound, dg, hr, acc_hid);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t m = m0 + r, na = m / B, b = m % B;
        tick_sum<G>(dgp, R, r, ticks, per_sub);
        float* ga = d_from_a + na * G;                   // row a of episode na / A
        float* gb = d_from_b + ((na / A) * B + b) * G;  // column b of that episode
        for (int k = 0; k < G; ++k) {
          ga[k] += per_sub[k];
          gb[k] += per_sub[k];
        }
      }
    }
    std::lock_guard<std::mutex> guard(merge);
    dw_hid.add_(acc_hid);
  });
}

// Backward of run_cell. The gate gradients never make a [T, N, 4H] tensor: block by block,
// they are multiplied into per-thread sums of the weight gradients, which are added up at
// the end. d_fwd and d_bwd (the messages' gradients) are written only when input_grad.
template <int H>
static void run_cell_backward(const float* fwd, const float* bwd, const torch::Tensor& w_fwd,
                              const torch::Tensor& w_bwd, const float* wt, const float* sv,
                              const float* cv_pre, const float* h_read, const float* c_in,
                              const float* dh_src, const float* dc_src, float* dh,
                              float* dc, int64_t N, int64_t M, int64_t ticks,
                              bool clip, float bound, bool input_grad, float* d_fwd,
                              float* d_bwd, torch::Tensor& dw_fwd, torch::Tensor& dw_bwd,
                              torch::Tensor& d_bias, torch::Tensor& dw_hid) {
  constexpr int G = 4 * H;
  const int64_t T = std::max<int64_t>(ticks, 1), rows = block_rows(ticks, G);
  const auto opts = w_fwd.options();
  std::mutex merge;
  at::parallel_for(0, N, rows, [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // worker threads do not inherit the caller's grad mode
    auto acc_in = torch::zeros({2 * M, G}, opts), acc_hid = torch::zeros({H, G}, opts);
    auto acc_bias = torch::zeros({G}, opts);
    auto dg = torch::empty({T * rows, G}, opts);  // the block's [T, R, G] gate gradients
    auto hr = torch::empty({T * rows, H}, opts);  // the hidden states those ticks read
    auto xs = torch::empty({rows, 2 * M}, opts);  // the block's messages, [fwd | bwd]
    auto per_sub = torch::empty({rows, G}, opts);  // gate gradients summed over the ticks
    const float* dgp = dg.data_ptr<float>();
    float *xsp = xs.data_ptr<float>(), *psp = per_sub.data_ptr<float>(), *biasp = acc_bias.data_ptr<float>();
    for (int64_t m0 = begin; m0 < end; m0 += rows) {
      const int64_t R = std::min(rows, end - m0);
      backward_block<H>(wt, sv, cv_pre, h_read, c_in, dh_src, dc_src, dh, dc, N, m0, R, ticks, clip,
                        bound, dg, hr, acc_hid);
      for (int64_t r = 0; r < R; ++r) {
        const int64_t m = m0 + r;
        std::memcpy(xsp + r * 2 * M, fwd + m * M, M * sizeof(float));
        std::memcpy(xsp + r * 2 * M + M, bwd + m * M, M * sizeof(float));
        float* row = psp + r * G;
        tick_sum<G>(dgp, R, r, ticks, row);
        for (int k = 0; k < G; ++k) biasp[k] += row[k];
      }
      auto block = R == rows ? per_sub : per_sub.narrow(0, 0, R);
      add_products(acc_in, xs, per_sub, R);
      if (input_grad) {
        auto out_f = torch::from_blob(d_fwd + m0 * M, {R, M}, opts);
        auto out_b = torch::from_blob(d_bwd + m0 * M, {R, M}, opts);
        at::mm_out(out_f, block, w_fwd.t());
        at::mm_out(out_b, block, w_bwd.t());
      }
    }
    std::lock_guard<std::mutex> guard(merge);
    dw_fwd.add_(acc_in.narrow(0, 0, M));
    dw_bwd.add_(acc_in.narrow(0, M, M));
    dw_hid.add_(acc_hid);
    d_bias.add_(acc_bias);
  });
}

#define VSML_DISPATCH(H, CALL)                                                              \
  switch (H) {                                                                             \
    case 8: { constexpr int HH = 8; CALL; break; }                                         \
    case 16: { constexpr int HH = 16; CALL; break; }                                       \
    case 32: { constexpr int HH = 32; CALL; break; }                                       \
    case 64: { constexpr int HH = 64; CALL; break; }                                       \
    default: TORCH_CHECK(false, "fused kernel supports hidden sizes 8, 16, 32, 64; got ", H); \
  }

// Forward; with save = true also returns the gates [T, N, 4H], the cell states before
// clipping [T, N, H] and the hidden states each tick read [T, N, H] for the backward pass.
std::vector<torch::Tensor> forward_ticks(torch::Tensor from_a, torch::Tensor from_b,
                                         torch::Tensor w_hid, torch::Tensor h, torch::Tensor c,
                                         int64_t ticks, double clip, bool save) {
  // The loops below trust these shapes; anything else would read past a buffer's end.
  for (const auto& t : {from_a, from_b, w_hid, h, c}) {
    TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32, "fused kernel: float32 CPU tensors only");
  }
  TORCH_CHECK(h.dim() == 4 && c.sizes() == h.sizes(), "fused kernel: h and c must be [n, A, B, H] alike");
  TORCH_CHECK(ticks >= 0, "fused kernel: ticks must be >= 0");
  {
    const int64_t n = h.size(0), A = h.size(1), B = h.size(2), H = h.size(3);
    TORCH_CHECK(from_a.dim() == 3 && from_a.size(0) == n && from_a.size(1) == A && from_a.size(2) == 4 * H,
                "fused kernel: from_a must be [n, A, 4H]");
    TORCH_CHECK(from_b.dim() == 3 && from_b.size(0) == n && from_b.size(1) == B && from_b.size(2) == 4 * H,
                "fused kernel: from_b must be [n, B, 4H]");
    TORCH_CHECK(w_hid.dim() == 2 && w_hid.size(0) == H && w_hid.size(1) == 4 * H, "fused kernel: w_hid must be [H, 4H]");
  }
  auto fa = from_a.contiguous(), fb = from_b.contiguous(), w = w_hid.contiguous();
  auto hi = h.contiguous(), ci = c.contiguous();
  auto ho = torch::empty_like(hi), co = torch::empty_like(ci);
  const int64_t n = hi.size(0), A = hi.size(1), B = hi.size(2), H = hi.size(3);
  const int64_t N = n * A * B;
  torch::Tensor sv, cpre, hin;
  if (save) {
    sv = torch::empty({ticks, N, 4 * H}, hi.options());
    cpre = torch::empty({ticks, N, H}, hi.options());
    hin = torch::empty({ticks, N, H}, hi.options());
  }
  float* svp = save ? sv.data_ptr<float>() : nullptr;
  float* cpp = save ? cpre.data_ptr<float>() : nullptr;
  float* hip = save ? hin.data_ptr<float>() : nullptr;
  VSML_DISPATCH(H, (run<HH>(fa.data_ptr<float>(), fb.data_ptr<float>(), w.data_ptr<float>(),
                            hi.data_ptr<float>(), ci.data_ptr<float>(), ho.data_ptr<float>(),
                            co.data_ptr<float>(), n, A, B, ticks, clip > 0,
                            static_cast<float>(clip), svp, cpp, hip)));
  if (save) return {ho, co, sv, cpre, hin};
  return {ho, co};
}

// The gradient that arrived for an output state, or none: a missing one is read as zeros in
// the kernel (data() is nullptr), not made as a tensor of them. Holds the contiguous copy
// while the kernel reads it.
struct OutputGrad {
  torch::Tensor t;
  explicit OutputGrad(const c10::optional<torch::Tensor>& g)
      : t(g.has_value() ? g->contiguous() : torch::Tensor()) {}
  const float* data() const { return t.defined() ? t.data_ptr<float>() : nullptr; }
};

// Backward of forward_ticks: {d_from_a [n, A, 4H], d_from_b [n, B, 4H], d_w_hid [H, 4H],
// dh, dc [n, A, B, H]} from the gradients of the output states and what the forward saved.
// A missing (None) output gradient counts as zeros.
std::vector<torch::Tensor> backward_ticks(torch::Tensor w_hid, torch::Tensor sv,
                                          torch::Tensor cpre, torch::Tensor hin,
                                          torch::Tensor c_in,
                                          c10::optional<torch::Tensor> dh_out,
                                          c10::optional<torch::Tensor> dc_out, double clip) {
  auto wt = w_hid.detach().t().contiguous();  // [4H, H]; detached, as in cell_backward
  auto s = sv.contiguous(), cp = cpre.contiguous(), hr = hin.contiguous(), ci = c_in.contiguous();
  TORCH_CHECK(ci.dim() == 4, "fused kernel backward: c must be [n, A, B, H]");
  const int64_t n = ci.size(0), A = ci.size(1), B = ci.size(2), H = ci.size(3);
  const int64_t T = s.size(0), N = n * A * B;
  TORCH_CHECK(s.dim() == 3 && s.size(1) == N && s.size(2) == 4 * H && w_hid.size(0) == H &&
              w_hid.size(1) == 4 * H && cp.numel() == T * N * H && hr.numel() == T * N * H &&
              (!dh_out.has_value() || dh_out->numel() == N * H) &&
              (!dc_out.has_value() || dc_out->numel() == N * H), "fused kernel backward: inconsistent shapes");
  const OutputGrad dh_src(dh_out), dc_src(dc_out);
  const float *dhs = dh_src.data(), *dcs = dc_src.data();
  auto dh = torch::empty_like(ci), dc = torch::empty_like(ci);
  auto d_from_a = torch::empty({n, A, 4 * H}, ci.options()), d_from_b = torch::empty({n, B, 4 * H}, ci.options());
  auto dw_hid = torch::zeros({H, 4 * H}, ci.options());
  VSML_DISPATCH(H, (run_grid_backward<HH>(wt.data_ptr<float>(), s.data_ptr<float>(),
                                          cp.data_ptr<float>(), hr.data_ptr<float>(),
                                          ci.data_ptr<float>(), dhs, dcs, dh.data_ptr<float>(),
                                          dc.data_ptr<float>(), n, A, B, T, clip > 0,
                                          static_cast<float>(clip), d_from_a.data_ptr<float>(),
                                          d_from_b.data_ptr<float>(), dw_hid)));
  return {d_from_a, d_from_b, dw_hid, dh, dc};
}

// Forward of sub-LSTMs that read their own messages (1 x 1 grids): fwd, bwd [N, M]; w_fwd,
// w_bwd [M, 4H], bias [4H] and w_hid [H, 4H] with the gate scale (and gate biases) folded in;
// h, c [N, H]. With save = true also returns what cell_backward needs, as forward_ticks does.
std::vector<torch::Tensor> cell_forward(torch::Tensor fwd, torch::Tensor bwd, torch::Tensor w_fwd,
                                        torch::Tensor w_bwd, torch::Tensor bias,
                                        torch::Tensor w_hid, torch::Tensor h, torch::Tensor c,
                                        int64_t ticks, double clip, bool save) {
  for (const auto& t : {fwd, bwd, w_fwd, w_bwd, bias, w_hid, h, c}) {
    TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32, "fused cell kernel: float32 CPU tensors only");
  }
  TORCH_CHECK(h.dim() == 2 && c.sizes() == h.sizes(), "fused cell kernel: h and c must be [N, H] alike");
  TORCH_CHECK(ticks >= 0, "fused cell kernel: ticks must be >= 0");
  const int64_t N = h.size(0), H = h.size(1);
  TORCH_CHECK(fwd.dim() == 2 && fwd.size(0) == N && bwd.sizes() == fwd.sizes(), "fused cell kernel: fwd and bwd must be [N, M]");
  const int64_t M = fwd.size(1);
  TORCH_CHECK(w_fwd.dim() == 2 && w_fwd.size(0) == M && w_fwd.size(1) == 4 * H && w_bwd.sizes() == w_fwd.sizes(),
              "fused cell kernel: w_fwd and w_bwd must be [M, 4H]");
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == 4 * H, "fused cell kernel: bias must be [4H]");
  TORCH_CHECK(w_hid.dim() == 2 && w_hid.size(0) == H && w_hid.size(1) == 4 * H, "fused cell kernel: w_hid must be [H, 4H]");
  auto f = fwd.contiguous(), b = bwd.contiguous(), wf = w_fwd.contiguous(), wb = w_bwd.contiguous();
  auto bi = bias.contiguous(), w = w_hid.contiguous(), hi = h.contiguous(), ci = c.contiguous();
  auto ho = torch::empty_like(hi), co = torch::empty_like(ci);
  torch::Tensor sv, cpre, hin;
  if (save) {
    sv = torch::empty({ticks, N, 4 * H}, hi.options());
    cpre = torch::empty({ticks, N, H}, hi.options());
    hin = torch::empty({ticks, N, H}, hi.options());
  }
  VSML_DISPATCH(H, (run_cell<HH>(f.data_ptr<float>(), b.data_ptr<float>(), wf.data_ptr<float>(),
                                 wb.data_ptr<float>(), bi.data_ptr<float>(), w.data_ptr<float>(),
                                 hi.data_ptr<float>(), ci.data_ptr<float>(), ho.data_ptr<float>(),
                                 co.data_ptr<float>(), N, M, ticks, clip > 0, static_cast<float>(clip),
                                 save ? sv.data_ptr<float>() : nullptr,
                                 save ? cpre.data_ptr<float>() : nullptr,
                                 save ? hin.data_ptr<float>() : nullptr)));
  if (save) return {ho, co, sv, cpre, hin};
  return {ho, co};
}

// Backward of cell_forward: {d_fwd, d_bwd (empty unless input_grad), d_w_fwd, d_w_bwd, d_bias,
// d_w_hid, dh, dc}. A missing (None) output gradient counts as zeros.
std::vector<torch::Tensor> cell_backward(torch::Tensor fwd, torch::Tensor bwd, torch::Tensor w_fwd,
                                         torch::Tensor w_bwd, torch::Tensor w_hid, torch::Tensor sv,
                                         torch::Tensor cpre, torch::Tensor hin, torch::Tensor c_in,
                                         c10::optional<torch::Tensor> dh_out,
                                         c10::optional<torch::Tensor> dc_out, double clip,
                                         bool input_grad) {
  // Detached: the products below run on worker threads, whose grad mode is their own.
  auto f = fwd.detach().contiguous(), b = bwd.detach().contiguous();
  auto wf = w_fwd.detach().contiguous(), wb = w_bwd.detach().contiguous();
  auto wt = w_hid.detach().t().contiguous();  // [4H, H]
  auto s = sv.contiguous(), cp = cpre.contiguous(), hr = hin.contiguous(), ci = c_in.contiguous();
  const int64_t T = s.size(0), N = s.size(1), H = s.size(2) / 4;
  TORCH_CHECK(s.dim() == 3 && s.size(2) == 4 * H && w_hid.size(0) == H && w_hid.size(1) == 4 * H &&
              cp.numel() == T * N * H && hr.numel() == T * N * H && ci.numel() == N * H &&
              f.dim() == 2 && f.size(0) == N && b.sizes() == f.sizes() &&
              wf.dim() == 2 && wf.size(0) == f.size(1) && wf.size(1) == 4 * H && wb.sizes() == wf.sizes() &&
              (!dh_out.has_value() || dh_out->numel() == N * H) &&
              (!dc_out.has_value() || dc_out->numel() == N * H), "fused cell kernel backward: inconsistent shapes");
  const OutputGrad dh_src(dh_out), dc_src(dc_out);
  const float *dhs = dh_src.data(), *dcs = dc_src.data();
  auto dh = torch::empty({N, H}, ci.options()), dc = torch::empty({N, H}, ci.options());
  auto d_fwd = input_grad ? torch::empty_like(f) : torch::empty({0}, f.options());
  auto d_bwd = input_grad ? torch::empty_like(b) : torch::empty({0}, f.options());
  auto dw_fwd = torch::zeros_like(wf), dw_bwd = torch::zeros_like(wb);
  auto d_bias = torch::zeros({4 * H}, f.options()), dw_hid = torch::zeros({H, 4 * H}, f.options());
  VSML_DISPATCH(H, (run_cell_backward<HH>(f.data_ptr<float>(), b.data_ptr<float>(), wf, wb,
                                          wt.data_ptr<float>(), s.data_ptr<float>(),
                                          cp.data_ptr<float>(), hr.data_ptr<float>(),
                                          ci.data_ptr<float>(), dhs, dcs, dh.data_ptr<float>(),
                                          dc.data_ptr<float>(), N, f.size(1), T, clip > 0,
                                          static_cast<float>(clip), input_grad,
                                          input_grad ? d_fwd.data_ptr<float>() : nullptr,
                                          input_grad ? d_bwd.data_ptr<float>() : nullptr,
                                          dw_fwd, dw_bwd, d_bias, dw_hid)));
  return {d_fwd, d_bwd, dw_fwd, dw_bwd, d_bias, dw_hid, dh, dc};
}
"""

#: Hidden sizes the kernel is instantiated for.
SUPPORTED_HIDDEN = (8, 16, 32, 64)

_module = None  # the compiled extension, loaded on first use
_failed: Optional[str] = None  # why compiling failed, once it has


#: Name of the compiled extension (its library is ``<build directory>/<name>.so``).
_NAME = "vsml_lite_fused"


def _build_directory() -> str:
    """Where the kernel is compiled: one folder per Python environment, torch version, CPU and
    kernel source under torch's extension root (``$TORCH_EXTENSIONS_DIR``, default
    ``~/.cache/torch_extensions``). torch's default folder is shared by every environment of a
    user, so environments with different torch builds (a project venv, a CI clone's venv), or
    checkouts of different commits (a background campaign beside the working tree), would
    rebuild the kernel over each other's, about half a minute each time; and the kernel is
    built with ``-march=native``, so a home folder shared by machines with different CPUs must
    not share one library."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions")
    key = f"{sys.prefix}|{torch.__version__}|{_cpu_features()}|{_SOURCE}"
    path = os.path.join(root, f"{_NAME}_{hashlib.sha1(key.encode()).hexdigest()[:12]}")
    os.makedirs(path, exist_ok=True)
    return path


def _cpu_features() -> str:
    """What ``-march=native`` compiles for: the CPU model and its instruction-set flags."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:  # not Linux
        return f"{platform.machine()}|{platform.processor()}"


def _drop_damaged_library(library: str) -> None:
    """Remove a cached library that is not the one a build of ours recorded (a checksum
    written beside it after it loaded): a truncated ``.so`` kills the process with SIGBUS
    when loaded, and a garbage one fails to load; either way the next build relinks it."""
    stamp = library + ".sha256"
    if not os.path.exists(library):
        return
    recorded = open(stamp).read().strip() if os.path.exists(stamp) else None
    if recorded == file_sha256(library):
        return
    if recorded is not None:  # a library of ours, damaged since; one without a record is just rebuilt
        warnings.warn(f"vsml_lite.fused: the cached kernel {library} is damaged (checksum differs "
                      f"from the one recorded when it was built); rebuilding it")
    for path in (library, stamp):
        if os.path.exists(path):
            os.remove(path)


#: The lock file in the build directory that :func:`_load` holds while it checks, builds and
#: records the library (torch's own ``lock`` covers the build alone).
_LOCK_NAME = "vsml_lite.lock"


@contextlib.contextmanager
def _build_lock(build: str):
    """Hold an exclusive lock on the build directory (POSIX ``flock``; none elsewhere). Without
    it a process that starts while another rebuilds the library can take the half-linked
    library for a damaged one and delete it under the other's load: on 2026-12-01 a background
    campaign's load failed while another process rebuilt the library, and it ran eagerly, 2.7
    times slower, for 41 minutes."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(os.path.join(build, _LOCK_NAME), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def available() -> bool:
    """Whether the kernel can be used (compiling it on the first call)."""
    return _load() is not None


def disabled() -> bool:
    """Whether ``$VSML_FUSED`` turns the kernel off (``0``, ``false``, ``no`` or ``off``)."""
    return os.environ.get(FUSED_ENV_VAR, "1").strip().lower() in FALSE_WORDS


def _load():
    global _module, _failed
    if _module is not None or _failed is not None:
        return _module
    if disabled():
        _failed = f"disabled by {FUSED_ENV_VAR}={os.environ[FUSED_ENV_VAR]}"
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

        build = _build_directory()
        library = os.path.join(build, f"{_NAME}.so")
        with _build_lock(build):
            _drop_damaged_library(library)
            _module = load_inline(
                name=_NAME,
                build_directory=build,
                cpp_sources=[_SOURCE],
                functions=["forward_ticks", "backward_ticks", "cell_forward", "cell_backward"],
                extra_cflags=["-O3", "-march=native", "-fopenmp", "-Wno-psabi"],
                extra_ldflags=["-fopenmp"],  # at::parallel_for spreads rows over OpenMP threads
                verbose=False,
            )
            if os.path.exists(library):  # record the library that loaded, for the next process
                with open(library + ".sha256", "w") as f:
                    f.write(file_sha256(library))
    except Exception as err:  # no compiler, no ninja, read-only cache, ...
        _failed = f"{type(err).__name__}: {err}"
        warnings.warn(f"vsml_lite.fused: compiling the CPU kernel failed, using the eager path ({_failed}); "
                      f"set {FUSED_ENV_VAR}=0 to use the eager path without trying")
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
    """All micro ticks of a dense layer in the compiled kernel; differentiable.

    Outside autograd it runs the forward kernel only. When any input requires a gradient it
    also saves, per tick, the squashed gates, the cell state before clipping and the hidden
    state read (``T·N·6H`` floats), and its backward kernel returns the gradients that
    autograd would compute through the eager ticks (``tests/test_network.py`` holds them
    equal).

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
    _check_shapes(from_a, from_b, w_hid, h, c)
    check_count("micro_ticks", micro_ticks)
    return dense_ticks_checked(from_a, from_b, w_hid, h, c, micro_ticks, check_state_clip(state_clip))


def dense_ticks_checked(from_a, from_b, w_hid, h, c, micro_ticks: int,
                        state_clip: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`dense_ticks` for inputs its caller has already checked
    (:func:`vsml_lite.layer.check_layer` checks the layer the projections are made from): the
    layer tick's hot path, which would otherwise check everything twice. The C++ code still
    refuses inconsistent shapes."""
    module = _load()
    if module is None:
        raise RuntimeError(f"the fused kernel is not available ({_failed})")
    clip = state_clip if state_clip is not None else 0.0
    tensors = (from_a, from_b, w_hid, h, c)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _FusedTicks.apply(from_a, from_b, w_hid, h, c, int(micro_ticks), clip)
    h_new, c_new = module.forward_ticks(from_a, from_b, w_hid, h, c, int(micro_ticks), clip, False)
    return h_new, c_new


def _check_shapes(from_a, from_b, w_hid, h, c) -> None:
    """The kernel reads ``n·A·B`` sub-LSTMs' worth of every input; a tensor of another shape
    would be read past its end. Checked here, with names, and again in the C++ code."""
    check_tensor("h", h, [None, None, None, None], dtype=torch.float32)
    n, A, B, H = h.shape
    if H not in SUPPORTED_HIDDEN:
        raise ValueError(f"fused kernel supports hidden sizes {SUPPORTED_HIDDEN}, got {H}")
    if h.device.type != "cpu":
        raise ValueError(f"the fused kernel runs on the CPU; h is on {h.device}")
    check_tensor("c", c, [n, A, B, H], like=h)
    check_tensor("from_a", from_a, [n, A, 4 * H], like=h)
    check_tensor("from_b", from_b, [n, B, 4 * H], like=h)
    check_tensor("w_hid", w_hid, [H, 4 * H], like=h)


class _FusedTicks(torch.autograd.Function):
    """Autograd bridge: forward_ticks (saving) forward, backward_ticks backward."""

    @staticmethod
    def forward(ctx, from_a, from_b, w_hid, h, c, ticks, clip):
        h_new, c_new, gates, c_pre, h_read = _module.forward_ticks(from_a, from_b, w_hid, h, c, ticks, clip, True)
        ctx.save_for_backward(w_hid, gates, c_pre, h_read, c)
        ctx.clip = clip
        return h_new, c_new

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh_out, dc_out):
        w_hid, gates, c_pre, h_read, c = ctx.saved_tensors
        # The kernel sums the gate gradients over the ticks and the grid's rows and columns,
        # and a missing output gradient (the cell state is often unused) is zeros, in the kernel.
        d_from_a, d_from_b, d_w_hid, dh, dc = _module.backward_ticks(w_hid, gates, c_pre, h_read, c, dh_out, dc_out,
                                                                     ctx.clip)
        return d_from_a, d_from_b, d_w_hid, dh, dc, None, None


def cell_ticks(
    fwd_in: torch.Tensor,
    bwd_in: torch.Tensor,
    w_fwd: torch.Tensor,
    w_bwd: torch.Tensor,
    bias: torch.Tensor,
    w_hid: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    micro_ticks: int,
    state_clip: Optional[float] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """All micro ticks of sub-LSTMs that each read their own messages: :func:`dense_ticks` for
    1 × 1 grids (Chapters 3 and 4 clone one sub-LSTM per example), in one compiled kernel that
    also makes the input projection, so that no ``[N, 4H]`` tensor is written and read back.
    Its backward adds the gate gradients into the weight gradients block by block, in cache.

    Args:
        fwd_in, bwd_in: ``[N, M]`` each sub-LSTM's forward and backward message.
        w_fwd, w_bwd: ``[M, 4H]``; bias: ``[4H]``; w_hid: ``[H, 4H]``; with the gate scale and
            gate biases folded in (see :func:`vsml_lite.layer.dense_ticks`).
        h, c: ``[N, H]`` states (not modified).
        micro_ticks: LSTM ticks.
        state_clip: clip ``c`` to ``[-clip, clip]`` after every tick, or ``None``.

    Returns:
        New ``(h, c)``, ``[N, H]`` each.
    """
    check_tensor("h", h, [None, None], dtype=torch.float32)
    N, H = h.shape
    if H not in SUPPORTED_HIDDEN:
        raise ValueError(f"fused kernel supports hidden sizes {SUPPORTED_HIDDEN}, got {H}")
    if h.device.type != "cpu":
        raise ValueError(f"the fused kernel runs on the CPU; h is on {h.device}")
    check_tensor("c", c, [N, H], like=h)
    check_tensor("fwd_in", fwd_in, [N, None], like=h)
    M = fwd_in.shape[1]
    check_tensor("bwd_in", bwd_in, [N, M], like=h)
    for name, t, shape in (("w_fwd", w_fwd, [M, 4 * H]), ("w_bwd", w_bwd, [M, 4 * H]), ("bias", bias, [4 * H]),
                           ("w_hid", w_hid, [H, 4 * H])):
        check_tensor(name, t, shape, like=h)
    check_count("micro_ticks", micro_ticks)
    return cell_ticks_checked(fwd_in, bwd_in, w_fwd, w_bwd, bias, w_hid, h, c, micro_ticks,
                              check_state_clip(state_clip))


def cell_ticks_checked(fwd_in, bwd_in, w_fwd, w_bwd, bias, w_hid, h, c, micro_ticks: int,
                       state_clip: Optional[float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`cell_ticks` for inputs its caller has already checked (as
    :func:`dense_ticks_checked`); the C++ code still refuses inconsistent shapes."""
    module = _load()
    if module is None:
        raise RuntimeError(f"the fused kernel is not available ({_failed})")
    clip = state_clip if state_clip is not None else 0.0
    tensors = (fwd_in, bwd_in, w_fwd, w_bwd, bias, w_hid, h, c)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _FusedCell.apply(*tensors, int(micro_ticks), clip)
    h_new, c_new = module.cell_forward(*tensors, int(micro_ticks), clip, False)
    return h_new, c_new


class _FusedCell(torch.autograd.Function):
    """Autograd bridge: cell_forward (saving) forward, cell_backward backward."""

    @staticmethod
    def forward(ctx, fwd_in, bwd_in, w_fwd, w_bwd, bias, w_hid, h, c, ticks, clip):
        h_new, c_new, gates, c_pre, h_read = _module.cell_forward(fwd_in, bwd_in, w_fwd, w_bwd, bias, w_hid, h, c,
                                                                  ticks, clip, True)
        ctx.save_for_backward(fwd_in, bwd_in, w_fwd, w_bwd, w_hid, gates, c_pre, h_read, c)
        ctx.clip = clip
        return h_new, c_new

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh_out, dc_out):
        fwd_in, bwd_in, w_fwd, w_bwd, w_hid, gates, c_pre, h_read, c = ctx.saved_tensors
        input_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        d_fwd, d_bwd, dw_fwd, dw_bwd, d_bias, dw_hid, dh, dc = _module.cell_backward(
            fwd_in, bwd_in, w_fwd, w_bwd, w_hid, gates, c_pre, h_read, c, dh_out, dc_out, ctx.clip, input_grad)
        if not input_grad:
            d_fwd = d_bwd = None
        return d_fwd, d_bwd, dw_fwd, dw_bwd, d_bias, dw_hid, dh, dc, None, None
