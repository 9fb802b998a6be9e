"""A dense VSML layer: the shared sub-LSTM ``V_M``, a layer's state and its micro ticks
(Sections 3, 3.1, 3.2; Appendices C and D). :mod:`vsml_lite.network` stacks such layers.

A dense VSML layer with ``A`` inputs and ``B`` outputs is an ``[A, B]`` grid of sub-LSTMs. All of
them share one set of meta variables ``V_M`` (:class:`SubLSTM`); each keeps its own state, the
learned variables ``V_L`` (hidden and cell vectors of ``H`` numbers each). Sub-LSTM ``(a, b)``
reads two messages every micro tick:

* the **forward message** of input neuron ``a`` (``[M]``): the interaction term ``C`` of Eq. 3,
  coming from the layer below (or the datum, for the first layer);
* the **backward message** of output neuron ``b`` (``[M]``): the interaction term ``U`` of
  Eq. 14, coming from the layer above (or the prediction error, for the last layer).

After the micro ticks, the layer sends forward the average over ``a`` of the sub-LSTMs'
forward projections (one ``[M]`` message per output neuron ``b``) and backward the average over
``b`` of their backward projections (one message per input neuron ``a``). Averaging is the
official code's choice and keeps message scales independent of ``A`` and ``B``;
``reduce="sum"`` gives the paper's written form, the output ``Σ_a s_{a j̄ 1}``. With
``layer_norm`` each sub-LSTM's messages pass through a LayerNorm over their ``M`` numbers
(learned scale and offset) before the reduction, as the official code's gradient-based
configurations do (``sub_rnn.layer_norm: True``). Layers are stacked
with tied ``V_M`` and untied states (Section 3.1). The datum enters slot :data:`INPUT_SLOT` of
the forward message of every input neuron; the network's output is slot :data:`OUTPUT_SLOT`
of the last layer's forward messages; the previous step's prediction error enters slot
:data:`ERROR_SLOT` of the last layer's backward messages.

Two implementations of a layer tick agree to float32 tolerance (``tests/test_network.py``):

* :func:`dense_ticks` (fast): the LSTM input projection of sub-LSTM ``(a, b)`` is
  ``fwd[a] @ W_fwd + bwd[b] @ W_bwd``; each term is computed once per neuron and broadcast over
  the grid, instead of ``A·B`` projections of concatenated inputs. Likewise the message
  projections are applied after averaging ``h`` over ``a`` or ``b``, not to every sub-LSTM.
* :func:`dense_ticks_reference`: every sub-LSTM concatenates its inputs and projects every
  message, then the messages are reduced. Plain and several times slower; read it first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from . import fused as fused_module
from .validate import check_count, check_state_clip, check_tensor

#: Bias added to the forget gate: sigmoid(5) ≈ 0.993, so by default a sub-LSTM keeps its cell
#: state (which plays the role of a weight) from tick to tick unless V_M learns to change it.
FORGET_GATE_BIAS = 5.0
#: Bias added to the input gate: sigmoid(-5) ≈ 0.007, so by default little new information is
#: written into the cell; together with the forget bias this makes the state slow, like weights.
INPUT_GATE_BIAS = -5.0
#: Slot of the forward message that carries the datum x_ī into row ī (Section 3.1).
INPUT_SLOT = 0
#: Slot of the last layer's forward message read as the network's output for neuron j̄.
OUTPUT_SLOT = 1
#: Slot of the last layer's backward message that carries the previous prediction error.
ERROR_SLOT = 0
#: Epsilon of the optional LayerNorm on messages (haiku's ``hk.LayerNorm`` default, as in the
#: official code).
LAYER_NORM_EPS = 1e-5
#: Reductions over the grid that turn many sub-LSTM messages into one per neuron.
REDUCTIONS = ("mean", "sum")


@dataclass
class LayerState:
    """State of one dense VSML layer for a batch of ``n`` independent copies.

    Attributes:
        h: ``[n, A, B, H]`` LSTM hidden vectors.
        c: ``[n, A, B, H]`` LSTM cell vectors.
        fwd_in: ``[n, A, M]`` forward messages arriving at the layer's input neurons.
        bwd_in: ``[n, B, M]`` backward messages arriving at the layer's output neurons.
    """

    h: torch.Tensor
    c: torch.Tensor
    fwd_in: torch.Tensor
    bwd_in: torch.Tensor


class SubLSTM(nn.Module):
    """The meta variables V_M: one small LSTM and two message projections, shared by every
    sub-LSTM of every layer.

    Args:
        hidden_size: ``H``, the LSTM cell size (the official code's ``slow_size``).
        msg_size: ``M``, the width of forward and backward messages.
        position_inputs: also feed each sub-LSTM its coordinates ``(a / A, b / B)`` (Appendix D).
        layer_norm: normalise every sub-LSTM's forward and backward message over its ``M``
            numbers (:func:`messages`), as the official code's ``SubRNN(layer_norm=True)``.
        generator: seeds the initialisation.

    Parameters (shapes):
        w_fwd ``[M, 4H]``, w_bwd ``[M, 4H]``, w_hid ``[H, 4H]``, bias ``[4H]``: the LSTM, gates in
        the order input, cell candidate, forget, output; w_pos ``[2, 4H]`` with position inputs;
        fwd_proj ``[H, M]`` + fwd_bias ``[M]``, bwd_proj ``[H, M]`` + bwd_bias ``[M]``: messages;
        with ``layer_norm``, fwd_norm_scale, fwd_norm_offset, bwd_norm_scale, bwd_norm_offset
        ``[M]`` each (scale 1 and offset 0 at initialisation).
    """

    def __init__(
        self,
        hidden_size: int = 16,
        msg_size: int = 8,
        position_inputs: bool = False,
        generator: Optional[torch.Generator] = None,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if hidden_size < 1 or msg_size < 2:
            raise ValueError(f"need hidden_size >= 1 and msg_size >= 2, got {hidden_size}, {msg_size}")
        H, M = hidden_size, msg_size
        self.hidden_size, self.msg_size, self.position_inputs = H, M, position_inputs
        self.layer_norm = layer_norm
        n_in = 2 * M + H + (2 if position_inputs else 0)  # what one sub-LSTM concatenates

        def init(*shape, fan_in):  # truncated normal, std 1/sqrt(fan_in), as for a dense layer
            w = torch.empty(*shape)
            nn.init.trunc_normal_(w, std=1.0 / math.sqrt(fan_in), a=-2.0 / math.sqrt(fan_in),
                                  b=2.0 / math.sqrt(fan_in), generator=generator)
            return nn.Parameter(w)

        self.w_fwd = init(M, 4 * H, fan_in=n_in)
        self.w_bwd = init(M, 4 * H, fan_in=n_in)
        self.w_hid = init(H, 4 * H, fan_in=n_in)
        self.w_pos = init(2, 4 * H, fan_in=n_in) if position_inputs else None
        self.bias = nn.Parameter(torch.zeros(4 * H))
        self.fwd_proj = init(H, M, fan_in=H)
        self.fwd_bias = nn.Parameter(torch.zeros(M))
        self.bwd_proj = init(H, M, fan_in=H)
        self.bwd_bias = nn.Parameter(torch.zeros(M))
        if layer_norm:  # after every other parameter, so V_M vectors of earlier layouts still fit
            self.fwd_norm_scale, self.fwd_norm_offset = nn.Parameter(torch.ones(M)), nn.Parameter(torch.zeros(M))
            self.bwd_norm_scale, self.bwd_norm_offset = nn.Parameter(torch.ones(M)), nn.Parameter(torch.zeros(M))
        # Constants of the fast path (see _gate_constants), made once and moved with the
        # module instead of rebuilt at every tick; not part of the state dict (not V_M).
        scale, bias = _gate_constants(H, torch.zeros(()))
        self.register_buffer("gate_scale", scale, persistent=False)
        self.register_buffer("gate_bias", bias, persistent=False)

    def num_meta_variables(self) -> int:
        """|V_M|: the number of shared parameters."""
        return sum(p.numel() for p in self.parameters())


def _positions(A: int, B: int, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Coordinates ``a / A`` and ``b / B`` in [0, 1), shapes ``[A]`` and ``[B]``."""
    pa = torch.arange(A, dtype=like.dtype, device=like.device) / A
    pb = torch.arange(B, dtype=like.dtype, device=like.device) / B
    return pa, pb


def _reduce(x: torch.Tensor, dim: int, how: str) -> torch.Tensor:
    if x.shape[dim] == 1:  # one sub-LSTM per neuron (Chapter 3's grids): a view, not a pass over memory
        return x.squeeze(dim)
    if how == "mean":
        return x.mean(dim=dim)
    if how == "sum":
        return x.sum(dim=dim)
    raise ValueError(f"unknown reduction {how!r}; valid: {', '.join(REDUCTIONS)}")


def messages(lstm: SubLSTM, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every sub-LSTM's forward and backward message before the reduction over the grid:
    ``h [..., H]`` -> two ``[..., M]``, ``h @ proj + bias``, then, with ``lstm.layer_norm``,
    a LayerNorm over the ``M`` numbers with its learned scale and offset (the official
    ``SubRNN``: ``hk.LayerNorm((-1,), create_scale=True, create_offset=True)``)."""
    fwd, bwd = h @ lstm.fwd_proj + lstm.fwd_bias, h @ lstm.bwd_proj + lstm.bwd_bias
    if lstm.layer_norm:
        M = (lstm.msg_size,)
        fwd = nn.functional.layer_norm(fwd, M, lstm.fwd_norm_scale, lstm.fwd_norm_offset, LAYER_NORM_EPS)
        bwd = nn.functional.layer_norm(bwd, M, lstm.bwd_norm_scale, lstm.bwd_norm_offset, LAYER_NORM_EPS)
    return fwd, bwd


def _gate_constants(H: int, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-gate scale and bias used by the fast path, shapes ``[4H]``.

    The fast path squashes all four gates with one sigmoid. The cell candidate needs tanh,
    and ``tanh(g) = 2·sigmoid(2g) - 1``, so its pre-activation is scaled by 2 (by scaling its
    weight columns). The fixed gate biases are folded into the bias once per datum.
    """
    scale = torch.ones(4 * H, dtype=like.dtype, device=like.device)
    scale[H : 2 * H] = 2.0
    bias = torch.zeros(4 * H, dtype=like.dtype, device=like.device)
    bias[:H], bias[2 * H : 3 * H] = INPUT_GATE_BIAS, FORGET_GATE_BIAS
    return scale, bias


def dense_ticks(
    lstm: SubLSTM,
    layer: LayerState,
    micro_ticks: int,
    reduce: str = "mean",
    state_clip: Optional[float] = None,
    fused: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``micro_ticks`` ticks of a dense VSML layer (fast form) on fixed incoming messages.

    Args:
        lstm: the shared meta variables.
        layer: the layer's state; ``fwd_in [n, A, M]`` and ``bwd_in [n, B, M]`` stay fixed
            during the micro ticks.
        micro_ticks: LSTM ticks per datum.
        reduce: ``"mean"`` (default, keeps message scale independent of A and B) or ``"sum"``
            (the paper's Σ_a) over the grid.
        state_clip: clip the cell state to ``[-clip, clip]`` after every tick (Appendix D uses 4
            at meta-test time); ``None`` for no clipping.
        fused: where the compiled CPU kernel of :mod:`vsml_lite.fused` is available (float32
            on the CPU), run all micro ticks in it, with its own backward under autograd;
            on ``1 × 1`` grids (one sub-LSTM per example) the kernel also makes the input
            projection (:func:`vsml_lite.fused.cell_ticks`).

    Returns:
        ``(h, c, fwd_out, bwd_out)``: new states ``[n, A, B, H]``, the messages sent forward to
        the next layer ``[n, B, M]`` and backward to the previous one ``[n, A, M]``.
    """
    state_clip = check_layer(lstm, layer, micro_ticks, state_clip, reduce)
    h, c = layer.h, layer.c
    n, A, B, H = h.shape
    M = lstm.msg_size
    scale, gate_bias = lstm.gate_scale, lstm.gate_bias  # [4H] each (see _gate_constants)
    w_hid, bias = lstm.w_hid * scale, (lstm.bias + gate_bias) * scale  # [H, 4H], [4H]
    if fused and A == B == 1 and lstm.w_pos is None and _fused_ok(h, layer.fwd_in, layer.bwd_in, w_hid):
        # One sub-LSTM per example (Chapters 3 and 4): the kernel makes the input projection
        h, c = fused_module.cell_ticks_checked(layer.fwd_in.reshape(n, M), layer.bwd_in.reshape(n, M),
                                               lstm.w_fwd * scale, lstm.w_bwd * scale, bias, w_hid,
                                               h.reshape(n, H), c.reshape(n, H), micro_ticks, state_clip)
        h, c = h.view(n, A, B, H), c.view(n, A, B, H)
    else:
        # Input projection, split: a term per input neuron a and a term per output neuron b.
        from_a = layer.fwd_in @ (lstm.w_fwd * scale)  # [n, A, 4H]
        # the bias joins the product (addmm): one pass over [n, B, 4H], not two
        from_b = torch.addmm(bias, layer.bwd_in.reshape(n * B, M), lstm.w_bwd * scale).view(n, B, 4 * H)
        if lstm.w_pos is not None:
            pa, pb = _positions(A, B, h)
            w_pos = lstm.w_pos * scale
            from_a = from_a + pa[:, None] * w_pos[0]  # [n, A, 4H]
            from_b = from_b + pb[:, None] * w_pos[1]  # [n, B, 4H]
        if fused and _fused_ok(h, from_a, from_b, w_hid):
            h, c = fused_module.dense_ticks_checked(from_a, from_b, w_hid, h, c, micro_ticks, state_clip)
        else:
            h, c = folded_ticks(from_a, from_b, w_hid, h, c, micro_ticks, state_clip)
    if lstm.layer_norm:  # a nonlinearity per message: project every sub-LSTM
        fwd_msgs, bwd_msgs = messages(lstm, h)  # [n, A, B, M] each
        return h, c, _reduce(fwd_msgs, 1, reduce), _reduce(bwd_msgs, 2, reduce)
    if A == B == 1:  # one sub-LSTM per example: both messages from one product over h
        both = torch.addmm(torch.cat([lstm.fwd_bias, lstm.bwd_bias]), h.reshape(n, H),
                           torch.cat([lstm.fwd_proj, lstm.bwd_proj], dim=1))  # [n, 2M]
        return h, c, both[:, None, :M], both[:, None, M:]
    # Message projections after the reduction (they are linear, so this equals projecting
    # every sub-LSTM's message and then reducing; under "sum" the bias adds up A or B times).
    fwd_out = _reduce(h, 1, reduce) @ lstm.fwd_proj + (1 if reduce == "mean" else A) * lstm.fwd_bias
    bwd_out = _reduce(h, 2, reduce) @ lstm.bwd_proj + (1 if reduce == "mean" else B) * lstm.bwd_bias
    return h, c, fwd_out, bwd_out  # [n, A, B, H] x 2, [n, B, M], [n, A, M]


def folded_ticks(
    from_a: torch.Tensor,
    from_b: torch.Tensor,
    w_hid: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    micro_ticks: int,
    state_clip: Optional[float] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The micro ticks of :func:`dense_ticks` in eager PyTorch, on projections with the gate
    scale and biases of :func:`_gate_constants` folded in; what the fused kernel computes.

    Args:
        from_a: ``[n, A, 4H]``; from_b: ``[n, B, 4H]``; w_hid: ``[H, 4H]``; h, c: ``[n, A, B, H]``.

    Returns:
        New ``(h, c)``, ``[n, A, B, H]`` each.
    """
    state_clip = check_state_clip(state_clip)
    n, A, B, H = h.shape
    inputs = (from_a[:, :, None, :] + from_b[:, None, :, :]).reshape(n * A * B, 4 * H)
    h, c = h.reshape(n * A * B, H), c.reshape(n * A * B, H)
    for _ in range(micro_ticks):
        gates = torch.addmm(inputs, h, w_hid).sigmoid()  # [nAB, 4H], all gates squashed
        i, g2, f, o = gates.split(H, dim=1)
        c = f * c + i * (2.0 * g2 - 1.0)  # (Eq. 6), tanh(g) = 2 sigmoid(2g) - 1
        if state_clip is not None:
            c = c.clamp(-state_clip, state_clip)
        h = o * torch.tanh(c)
    return h.view(n, A, B, H), c.view(n, A, B, H)


def check_layer(lstm: SubLSTM, layer: LayerState, micro_ticks: int, state_clip: Optional[float],
                reduce: str) -> Optional[float]:
    """Raise a ``ValueError`` that names the problem unless ``layer`` fits ``lstm`` (shapes
    ``h, c: [n, A, B, H]``, ``fwd_in: [n, A, M]``, ``bwd_in: [n, B, M]``, one dtype and device);
    run before any compiled code, which trusts the shapes. Returns the checked clip."""
    w = lstm.w_hid
    check_tensor("layer.h", layer.h, [None, None, None, lstm.hidden_size], like=w)
    n, A, B, H = layer.h.shape
    check_tensor("layer.c", layer.c, [n, A, B, H], like=w)
    check_tensor("layer.fwd_in", layer.fwd_in, [n, A, lstm.msg_size], like=w)
    check_tensor("layer.bwd_in", layer.bwd_in, [n, B, lstm.msg_size], like=w)
    check_count("micro_ticks", micro_ticks)
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    return check_state_clip(state_clip)


def _fused_ok(*tensors: torch.Tensor) -> bool:
    """The compiled kernel runs float32 CPU tensors with a supported hidden size."""
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        return False
    return tensors[0].shape[-1] in fused_module.SUPPORTED_HIDDEN and fused_module.available()


def dense_ticks_reference(
    lstm: SubLSTM,
    layer: LayerState,
    micro_ticks: int,
    reduce: str = "mean",
    state_clip: Optional[float] = None,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`dense_ticks` written plainly. Every sub-LSTM ``(a, b)`` concatenates its inputs
    ``[fwd_in[a], bwd_in[b], h_ab (, a/A, b/B)]`` and multiplies them with the LSTM's full
    input matrix; every sub-LSTM projects its own forward and backward message; the messages
    are then reduced over the grid. Same arguments and returns."""
    state_clip = check_layer(lstm, layer, micro_ticks, state_clip, reduce)
    n, A, B, H = layer.h.shape
    M = lstm.msg_size
    fwd_ab = layer.fwd_in[:, :, None, :].expand(n, A, B, M)  # input neuron a's message
    bwd_ab = layer.bwd_in[:, None, :, :].expand(n, A, B, M)  # output neuron b's message
    extra, w_in = [], [lstm.w_fwd, lstm.w_bwd, lstm.w_hid]
    if lstm.w_pos is not None:
        pa, pb = _positions(A, B, layer.h)
        pos = torch.stack(torch.broadcast_tensors(pa[:, None], pb[None, :]), dim=-1)  # [A, B, 2]
        extra, w_in = [pos.expand(n, A, B, 2)], w_in + [lstm.w_pos]
    W = torch.cat(w_in, dim=0)  # [2M + H (+2), 4H]: the LSTM's input matrix, rows as x below
    h, c = layer.h, layer.c
    for _ in range(micro_ticks):
        x = torch.cat([fwd_ab, bwd_ab, h] + extra, dim=-1)  # [n, A, B, 2M + H (+2)]
        i, g, f, o = (x @ W + lstm.bias).chunk(4, dim=-1)  # [n, A, B, H] each
        c = torch.sigmoid(f + FORGET_GATE_BIAS) * c + torch.sigmoid(i + INPUT_GATE_BIAS) * torch.tanh(g)
        if state_clip is not None:
            c = c.clamp(-state_clip, state_clip)
        h = torch.sigmoid(o) * torch.tanh(c)
    fwd_msgs, bwd_msgs = messages(lstm, h)  # [n, A, B, M] each: every sub-LSTM's messages
    return h, c, _reduce(fwd_msgs, 1, reduce), _reduce(bwd_msgs, 2, reduce)
