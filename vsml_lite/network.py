"""The VSML network: dense layers of sub-LSTMs (:mod:`vsml_lite.layer`) stacked with tied
``V_M`` and untied states (Section 3.1), run one datum per step (Chapters 1, 5) or in a
forward and a backward phase (Chapter 4's cloned backpropagation, Section 3.2, Eq. 14), and
Appendix D's learner batch.

The layer's names are re-exported here (``vl.network.SubLSTM``, ``dense_ticks``, the slots).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .layer import (ERROR_SLOT, FORGET_GATE_BIAS, INPUT_GATE_BIAS, INPUT_SLOT, OUTPUT_SLOT,  # noqa: F401
                    REDUCTIONS, LayerState, SubLSTM, dense_ticks, dense_ticks_reference, folded_ticks)
from .validate import check_state_clip


class VSMLNetwork(nn.Module):
    """Stacked dense VSML layers with tied meta variables and untied states (Section 3.1).

    Args:
        layer_sizes: neurons per layer, e.g. ``[784, 10]`` (one layer of 784·10 sub-LSTMs) or
            ``[784, 32, 10]`` (two layers).
        hidden_size, msg_size, position_inputs: see :class:`SubLSTM`.
        micro_ticks: LSTM ticks per datum and layer.
        reduce: ``"mean"`` or ``"sum"`` over the grid (see :func:`dense_ticks`).
        output_bound: outputs pass through ``bound · tanh(y / bound)`` to keep them finite;
            ``None`` to read them raw.
        init_rand_fraction: fraction of each cell vector drawn at random in
            :meth:`initial_state` (std ``1/sqrt(A)``, like a dense layer's weights); the rest is 0.
        generator: seeds the meta variables.
        lstm: run these meta variables instead of fresh ones (e.g. a clone of Chapter 4);
            ``hidden_size``, ``msg_size`` and ``position_inputs`` are then the clone's.
        state_clip: the cell-state clip the network's ticks use when a call gives none
            (Appendix D: 4 at meta-test time); ``None`` for no clipping.
        fused: let :func:`dense_ticks` use the compiled CPU kernel where it can (``False``
            under ``torch.func.vmap``, e.g. a population of V_M in Chapter 6).
        layer_norm: a LayerNorm on every sub-LSTM's messages (:class:`SubLSTM`), as the
            official code's gradient-based configurations have; ignored with ``lstm``.

    The network runs in one of two ways, on the same sub-LSTM grid:

    * :meth:`step` (Chapters 1, 5): one datum per step; the previous step's prediction error
      enters the last layer's backward messages, and messages between layers travel whole
      (the backward ones reach the layer below at the next step).
    * two phases, :meth:`forward_phase` then :meth:`backward_phase` (Chapter 4's cloned
      backpropagation, Section 3.2, Eq. 14): each layer reads one value per neuron, in
      :data:`INPUT_SLOT` of the forward messages and :data:`ERROR_SLOT` of the backward
      messages, and sends one value on, from :data:`OUTPUT_SLOT` of its forward messages (the
      next layer's input) and from :data:`ERROR_SLOT` of its backward messages (the error of
      the layer below). :meth:`learn_step` is one learner step: forward phase, error
      ``softmax - onehot``, backward phase, then :func:`average_learner_batch`.

    Example:
        >>> net = VSMLNetwork([784, 10], generator=torch.Generator().manual_seed(0))
        >>> state = net.initial_state(batch=1, generator=torch.Generator().manual_seed(1))
        >>> x, err = torch.randn(1, 784), torch.zeros(1, 10)
        >>> state, y = net.step(state, x, err)        # y: [1, 10]
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden_size: int = 16,
        msg_size: int = 8,
        micro_ticks: int = 2,
        reduce: str = "mean",
        output_bound: Optional[float] = 100.0,
        init_rand_fraction: float = 0.5,
        position_inputs: bool = False,
        generator: Optional[torch.Generator] = None,
        fast: bool = True,
        lstm: Optional[SubLSTM] = None,
        state_clip: Optional[float] = None,
        fused: bool = True,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        sizes = list(layer_sizes)
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"layer_sizes needs at least two positive sizes, got {sizes}")
        if reduce not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduce!r}; valid: {', '.join(REDUCTIONS)}")
        if micro_ticks < 1:
            raise ValueError(f"micro_ticks must be >= 1, got {micro_ticks}")
        if not 0.0 <= init_rand_fraction <= 1.0:
            raise ValueError(f"init_rand_fraction must be in [0, 1], got {init_rand_fraction}")
        self.layer_sizes = sizes
        self.micro_ticks, self.reduce, self.output_bound = micro_ticks, reduce, output_bound
        self.init_rand_fraction = init_rand_fraction
        if lstm is None:
            lstm = SubLSTM(hidden_size, msg_size, position_inputs, generator=generator, layer_norm=layer_norm)
        self.lstm = lstm
        self.fast, self.state_clip, self.fused = fast, check_state_clip(state_clip), fused

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def num_meta_variables(self) -> int:
        """|V_M|."""
        return self.lstm.num_meta_variables()

    def num_learned_variables(self) -> int:
        """|V_L|: hidden and cell vectors of every sub-LSTM of every layer (one copy)."""
        H = self.lstm.hidden_size
        return sum(2 * H * A * B for A, B in zip(self.layer_sizes[:-1], self.layer_sizes[1:]))

    def initial_state(self, batch: int = 1, generator: Optional[torch.Generator] = None) -> List[LayerState]:
        """A fresh random V_L for ``batch`` independent copies: ``h = 0``; the first
        ``init_rand_fraction`` of every cell vector ~ truncated normal with std ``1/sqrt(A)``.

        Random numbers are drawn on the CPU from ``generator`` and moved to the parameters'
        device, so a seed gives the same state on every device.
        """
        p = self.lstm.w_hid
        H, M = self.lstm.hidden_size, self.lstm.msg_size
        k = int(H * self.init_rand_fraction)
        state = []
        for A, B in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            c = torch.zeros(batch, A, B, H)
            std = 1.0 / math.sqrt(A)
            nn.init.trunc_normal_(c[..., :k], std=std, a=-2 * std, b=2 * std, generator=generator)
            zeros = dict(dtype=p.dtype, device=p.device)
            state.append(LayerState(h=torch.zeros(batch, A, B, H, **zeros), c=c.to(**zeros),
                                    fwd_in=torch.zeros(batch, A, M, **zeros),
                                    bwd_in=torch.zeros(batch, B, M, **zeros)))
        return state

    def step(
        self,
        state: List[LayerState],
        x: torch.Tensor,
        error: torch.Tensor,
        state_clip: Optional[float] = None,
    ) -> Tuple[List[LayerState], torch.Tensor]:
        """Feed one datum per copy and return the new state and the outputs.

        Args:
            state: from :meth:`initial_state` or a previous :meth:`step` (not modified).
            x: ``[n, A_0]`` the datum, one value per input neuron (Section 3.1).
            error: ``[n, B_last]`` the previous step's prediction error (zeros at the start).
            state_clip: cell state clip (Appendix D: 4 at meta-test time); default the
                network's ``state_clip``.

        Returns:
            ``(new_state, y)`` with ``y: [n, B_last]``.
        """
        n, M = x.shape[0], self.lstm.msg_size
        if x.dim() != 2 or x.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"x must have shape [n, {self.layer_sizes[0]}], got {list(x.shape)}")
        if error.shape != (n, self.layer_sizes[-1]):
            raise ValueError(f"error must have shape [{n}, {self.layer_sizes[-1]}], got {list(error.shape)}")
        if len(state) != self.num_layers or state[0].h.shape[0] != n:
            raise ValueError(f"state has {len(state)} layers of batch {state[0].h.shape[0]}; "
                             f"need {self.num_layers} layers of batch {n}")
        clip = self.state_clip if state_clip is None else state_clip
        fwd = torch.zeros(n, self.layer_sizes[0], M, dtype=x.dtype, device=x.device)
        fwd[..., INPUT_SLOT] = x  # the datum, into row ī (Section 3.1)
        bwd_last = torch.zeros(n, self.layer_sizes[-1], M, dtype=x.dtype, device=x.device)
        bwd_last[..., ERROR_SLOT] = error  # the previous prediction error
        new = [LayerState(s.h, s.c, s.fwd_in, s.bwd_in) for s in state]
        new[0].fwd_in, new[-1].bwd_in = fwd, bwd_last
        y = None
        for l, layer in enumerate(new):
            layer.h, layer.c, fwd, bwd = self._ticks(layer, clip)
            if l > 0:
                new[l - 1].bwd_in = bwd  # reaches the layer below at the next step
            if l < self.num_layers - 1:
                new[l + 1].fwd_in = fwd  # reaches the layer above in this step
            else:
                y = fwd[..., OUTPUT_SLOT]  # [n, B_last]
        return new, self._bound(y)

    def _ticks(self, layer: LayerState, state_clip: Optional[float]):
        if not self.fast:
            return dense_ticks_reference(self.lstm, layer, self.micro_ticks, self.reduce, state_clip)
        return dense_ticks(self.lstm, layer, self.micro_ticks, self.reduce, state_clip, fused=self.fused)

    def _bound(self, y: torch.Tensor) -> torch.Tensor:
        if self.output_bound is None:
            return y
        return self.output_bound * torch.tanh(y / self.output_bound)

    # -- two phases: Chapter 4's cloned backpropagation (Section 3.2, Eq. 14) -------------
    def _phase(self, layer: LayerState, x: torch.Tensor, e: torch.Tensor):
        """One phase of one layer: ``x [n, A]`` in :data:`INPUT_SLOT` of the forward messages,
        ``e [n, B]`` in :data:`ERROR_SLOT` of the backward messages, zeros elsewhere. Returns
        the new layer state, the value sent forward ``[n, B]`` and the value sent back ``[n, A]``."""
        M = self.lstm.msg_size
        # Built without in-place writes, so that the phase also runs under torch.func.vmap.
        fwd = nn.functional.pad(x[..., None], (INPUT_SLOT, M - 1 - INPUT_SLOT))  # [n, A, M]
        bwd = nn.functional.pad(e[..., None], (ERROR_SLOT, M - 1 - ERROR_SLOT))  # [n, B, M]
        h, c, f, g = self._ticks(LayerState(layer.h, layer.c, fwd, bwd), self.state_clip)
        return LayerState(h, c, fwd, bwd), f[..., OUTPUT_SLOT], g[..., ERROR_SLOT]

    def forward_phase(self, state: List[LayerState], x: torch.Tensor):
        """The forward phase: each layer in turn reads its input with no error arriving.
        ``x [n, A_0]``.

        Returns ``(state, inputs, y)``: the new state, each layer's input and the output
        ``[n, B_last]``."""
        if x.dim() != 2 or x.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"x must have shape [n, {self.layer_sizes[0]}], got {list(x.shape)}")
        new, inputs = [], []
        for layer, B in zip(state, self.layer_sizes[1:]):
            inputs.append(x)
            layer, x, _ = self._phase(layer, x, x.new_zeros(x.shape[0], B))
            new.append(layer)
        return new, inputs, self._bound(x)

    def backward_phase(self, state: List[LayerState], inputs: List[torch.Tensor], error: torch.Tensor,
                       given_errors: Optional[List[torch.Tensor]] = None):
        """The backward phase, top layer first: each layer reads its forward-phase input again
        and the error of its outputs, updates the weights its state holds and sends ``e'``
        down (Eq. 14).

        Args:
            inputs: from :meth:`forward_phase`; error: ``[n, B_last]``.
            given_errors: ground-truth errors to use instead of the network's own for the
                lower layers (``given_errors[l]`` arrives at layer ``l - 1``'s outputs;
                Chapter 4's curriculum stage ``deep_gt``).

        Returns ``(state, errors)`` with ``errors[l]`` the error layer ``l`` sent down."""
        new = list(state)
        errors: List[Optional[torch.Tensor]] = [None] * len(new)
        e = error
        for l in reversed(range(len(new))):
            new[l], _, errors[l] = self._phase(new[l], inputs[l], e)
            e = given_errors[l] if given_errors is not None else errors[l]
        return new, errors

    def learn_step(self, state: List[LayerState], x: torch.Tensor, labels: torch.Tensor, groups: int = 1):
        """One learner step in two phases on ``groups`` learners of ``n / groups`` copies each
        (copies of one learner consecutive): forward phase, error ``softmax - onehot``, backward
        phase, then :func:`average_learner_batch`. ``x [n, A_0]``, ``labels [n]``.

        Returns ``(state, logits)``."""
        state, inputs, y = self.forward_phase(state, x)
        state, _ = self.backward_phase(state, inputs, cross_entropy_error(y, labels))
        return average_learner_batch(state, groups), y


def average_learner_batch(state: List[LayerState], groups: int = 1) -> List[LayerState]:
    """Appendix D: average the LSTM states over each learner's copies, so copies that saw
    different data points share what they learned (the analogue of a mini-batch).

    The batch axis holds ``groups`` independent learners of ``n / groups`` copies each, copies
    of one learner consecutive; ``groups = 1`` averages over the whole batch."""
    out = []
    for s in state:
        shp = s.h.shape
        if shp[0] % groups:
            raise ValueError(f"a batch of {shp[0]} copies does not split into {groups} learners")
        n = shp[0] // groups

        def avg(t):
            g = t.reshape(groups, n, *shp[1:]).mean(1, keepdim=True)
            return g.expand(groups, n, *shp[1:]).reshape(shp)

        out.append(LayerState(h=avg(s.h), c=avg(s.c), fwd_in=s.fwd_in, bwd_in=s.bwd_in))
    return out


def cross_entropy_error(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The prediction error fed back at the next step: the gradient of the cross-entropy with
    respect to the outputs, ``softmax(y) - onehot(label)``, shape ``[n, classes]``."""
    return torch.softmax(y, dim=-1) - nn.functional.one_hot(labels, y.shape[-1]).to(y.dtype)


def build_network(cfg, layer_sizes: Sequence[int], generator: Optional[torch.Generator] = None) -> VSMLNetwork:
    """A :class:`VSMLNetwork` with the settings of ``cfg.network`` (a :class:`vsml_lite.Config`),
    on ``cfg.device``."""
    from .device import get_device, get_dtype

    n = cfg.network
    net = VSMLNetwork(layer_sizes, hidden_size=n.hidden_size, msg_size=n.msg_size,
                      micro_ticks=n.micro_ticks, reduce=n.reduce, output_bound=n.output_bound,
                      init_rand_fraction=n.init_rand_fraction, position_inputs=n.position_inputs,
                      generator=generator)
    return net.to(device=get_device(cfg.device), dtype=get_dtype(cfg.dtype))
