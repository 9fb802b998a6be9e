"""The cloned learner: stacked dense VSML layers that run backpropagation with no gradient
computed anywhere (Section 3.2, Eq. 14, Appendix D). Chapter 3.

Every sub-LSTM ``(a, b)`` holds a weight ``w_ab`` and a bias ``b_ab`` in its cell state (slots
:data:`~vsml_lite.cloning.WEIGHT_SLOT` / ``BIAS_SLOT``, divided by ``state_scale``, Appendix C).
One learner step is a forward phase (the input ``x_a`` in the forward message) and a backward
phase (the same ``x_a``, and the error ``e_b`` in the backward message: Eq. 14's ``U`` term),
then the states are averaged over a learner batch (Appendix D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..cloning import BIAS_SLOT, WEIGHT_SLOT
from ..config import STATE_SCALE, Config
from ..device import make_generator
from ..network import LayerState, SubLSTM, cross_entropy_error, dense_ticks
from .ground_truth import Weights

#: Slot of the forward message carrying a layer's input x (and its output y to the next layer)
#: and slot of the backward message carrying the error e (and e' to the layer below). Using
#: the same slot in both directions is what lets cloned layers stack.
VALUE_SLOT = 0


@dataclass
class CloneState:
    """The learned variables V_L of a :class:`CloneLearner`: per layer ``(h, c)``, each
    ``[G·n, A, B, H]`` (``G`` learners of ``n`` copies, copies of one learner consecutive)."""

    layers: List[Tuple[torch.Tensor, torch.Tensor]]
    groups: int
    copies: int


class CloneLearner:
    """Stacked dense VSML layers running the cloned backpropagation (no autograd needed).

    Args:
        lstm: the shared meta variables V_M (a :class:`~vsml_lite.network.SubLSTM`).
        layer_sizes: e.g. ``[784, 10]`` (shallow) or ``[784, 32, 10]`` (deep).
        micro_ticks: LSTM ticks per phase and layer.
        state_clip: clip of the cell state (Appendix D: 4 at meta-test time), or ``None``.
        state_scale: weights and biases sit in the state divided by this.
        fused: let :func:`~vsml_lite.network.dense_ticks` use the compiled CPU kernel where it
            can (``False`` under ``torch.func.vmap``).
    """

    def __init__(self, lstm: SubLSTM, layer_sizes: Sequence[int], micro_ticks: int,
                 state_clip: Optional[float] = None, state_scale: float = STATE_SCALE,
                 fused: bool = True) -> None:
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"layer_sizes needs at least two positive sizes, got {list(layer_sizes)}")
        self.lstm, self.layer_sizes = lstm, sizes
        self.micro_ticks, self.state_clip, self.state_scale = micro_ticks, state_clip, state_scale
        self.fused = fused

    # -- states ---------------------------------------------------------------------------
    def state_from_weights(self, weights: Weights, copies: int) -> CloneState:
        """A state that holds ``weights`` (``[G, A, B]`` per layer) in every one of ``copies``
        copies: ``w`` and ``b`` divided by ``state_scale`` in the weight and bias slots of ``h``
        and ``c``."""
        if len(weights) != len(self.layer_sizes) - 1:
            raise ValueError(f"need weights for {len(self.layer_sizes) - 1} layers, got {len(weights)}")
        H = self.lstm.hidden_size
        layers = []
        for (w, b), A, B in zip(weights, self.layer_sizes[:-1], self.layer_sizes[1:]):
            if w.shape[1:] != (A, B) or b.shape != w.shape:
                raise ValueError(f"layer weights must be [G, {A}, {B}], got {list(w.shape)}, {list(b.shape)}")
            G = w.shape[0]
            c = torch.zeros(G, A, B, H, dtype=w.dtype, device=w.device)
            c[..., WEIGHT_SLOT], c[..., BIAS_SLOT] = w / self.state_scale, b / self.state_scale
            c = c.repeat_interleave(copies, dim=0)  # [G·n, A, B, H]
            layers.append((c.clone(), c))
        return CloneState(layers, weights[0][0].shape[0], copies)

    def read_weights(self, state: CloneState) -> Weights:
        """The weights and biases the state holds (``state_scale ×`` the slots of ``c``), averaged over
        each learner's copies: ``[G, A, B]`` per layer."""
        out = []
        for _, c in state.layers:
            c = c.reshape(state.groups, state.copies, *c.shape[1:]).mean(dim=1)
            out.append((self.state_scale * c[..., WEIGHT_SLOT], self.state_scale * c[..., BIAS_SLOT]))
        return out

    def _tick(self, h, c, x, e):
        """One phase of one layer: ``x [N, A]`` in the forward messages, ``e [N, B]`` in the
        backward messages. Returns new ``h, c``, the forward output ``[N, B]`` and the
        backward output ``[N, A]`` (value slots)."""
        M = self.lstm.msg_size
        # x and e in the value slot, zeros elsewhere; built without in-place writes so that the
        # step also runs under torch.func.vmap (a population of V_M, Chapter 5).
        fwd = nn.functional.pad(x[..., None], (VALUE_SLOT, M - 1 - VALUE_SLOT))  # [N, A, M]
        bwd = nn.functional.pad(e[..., None], (VALUE_SLOT, M - 1 - VALUE_SLOT))  # [N, B, M]
        h, c, f, g = dense_ticks(self.lstm, LayerState(h, c, fwd, bwd), self.micro_ticks,
                                 reduce="sum", state_clip=self.state_clip, fused=self.fused)
        return h, c, f[..., VALUE_SLOT], g[..., VALUE_SLOT]

    def forward(self, state: CloneState, x: torch.Tensor):
        """Forward phase (no error in the backward messages). ``x [G·n, A_0]``.

        Returns ``(state, inputs, y)``: the new state, each layer's input and the output
        ``[G·n, B_last]``."""
        if x.dim() != 2 or x.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"x must have shape [N, {self.layer_sizes[0]}], got {list(x.shape)}")
        layers, inputs = [], []
        for (h, c), B in zip(state.layers, self.layer_sizes[1:]):
            inputs.append(x)
            h, c, x, _ = self._tick(h, c, x, x.new_zeros(x.shape[0], B))
            layers.append((h, c))
        return CloneState(layers, state.groups, state.copies), inputs, x

    def backward(self, state: CloneState, inputs: List[torch.Tensor], error: torch.Tensor,
                 given_errors: Optional[List[torch.Tensor]] = None):
        """Backward phase, top layer first: each layer sees its forward-phase input again and
        the error of its outputs; it updates its weights and sends ``e'`` down (Eq. 14).

        Args:
            inputs: from :meth:`forward`; error: ``[G·n, B_last]``.
            given_errors: ground-truth errors to use instead of the learner's own for the
                lower layers (``given_errors[l]`` arrives at layer ``l - 1``'s outputs;
                curriculum stage ``deep_gt``).

        Returns ``(state, errors)`` with ``errors[l]`` the error layer ``l`` sent down."""
        layers = list(state.layers)
        errors: List[Optional[torch.Tensor]] = [None] * len(layers)
        e = error
        for l in reversed(range(len(layers))):
            h, c = layers[l]
            h, c, _, e_down = self._tick(h, c, inputs[l], e)
            layers[l], errors[l] = (h, c), e_down
            e = given_errors[l] if given_errors is not None else e_down
        return CloneState(layers, state.groups, state.copies), errors

    @staticmethod
    def average(state: CloneState) -> CloneState:
        """Appendix D: average ``h`` and ``c`` over each learner's copies (a learner batch)."""
        G, n = state.groups, state.copies
        out = []
        for h, c in state.layers:
            shp = h.shape
            h = h.reshape(G, n, *shp[1:]).mean(1, keepdim=True).expand(G, n, *shp[1:]).reshape(shp)
            c = c.reshape(G, n, *shp[1:]).mean(1, keepdim=True).expand(G, n, *shp[1:]).reshape(shp)
            out.append((h, c))
        return CloneState(out, G, n)

    def step(self, state: CloneState, x: torch.Tensor, labels: torch.Tensor):
        """One learning step on a learner batch: forward phase, error ``softmax - onehot``,
        backward phase, state averaging. ``x [G·n, A_0]``, ``labels [G·n]``.

        Returns ``(state, logits)``."""
        state, inputs, y = self.forward(state, x)
        state, _ = self.backward(state, inputs, cross_entropy_error(y, labels))
        return self.average(state), y

    @torch.no_grad()
    def predict(self, state: CloneState, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """Logits of each learner for the same examples ``x [E, A_0]`` without learning
        (forward phase from copy 0's state; the state is discarded). Returns ``[G, E, B]``."""
        G, n = state.groups, state.copies
        first = [(h[::n], c[::n]) for h, c in state.layers]  # [G, A, B, H]
        outs = []
        for start in range(0, x.shape[0], chunk):
            xe = x[start:start + chunk]
            E = xe.shape[0]
            layers = [(h.repeat_interleave(E, 0), c.repeat_interleave(E, 0)) for h, c in first]
            _, _, y = self.forward(CloneState(layers, G, E), xe.repeat(G, 1))
            outs.append(y.reshape(G, E, -1))
        return torch.cat(outs, dim=1)


def learning_rate(cfg: Config) -> float:
    """η of the cloned SGD on ``w``: the state holds ``w / state_scale``, so an update of
    ``update_scale`` in the state is ``state_scale · update_scale`` on ``w``."""
    p = cfg.backprop_cloning
    return p.state_scale * p.update_scale


def make_learner(lstm: SubLSTM, cfg: Config, layer_sizes: Sequence[int]) -> "CloneLearner":
    """A :class:`CloneLearner` with the micro ticks and state scale of ``cfg.backprop_cloning``
    and Appendix D's state clip (``cfg.network.meta_test_state_clip``), for cloning and
    meta-testing alike."""
    p = cfg.backprop_cloning
    return CloneLearner(lstm, layer_sizes, p.micro_ticks, cfg.network.meta_test_state_clip, p.state_scale)


def new_clone_lstm(cfg: Config, seed: Optional[int] = None) -> SubLSTM:
    """A freshly initialised sub-LSTM with the backprop cloning sizes (Table 1: cell size 32)."""
    p = cfg.backprop_cloning
    return SubLSTM(p.hidden_size, p.msg_size, generator=make_generator(cfg.seed if seed is None else seed))


def assert_no_autograd(*tensors: torch.Tensor) -> None:
    """Raise when autograd is recording or any tensor carries a graph: the cloned learner must
    learn by running forward only."""
    if torch.is_grad_enabled():
        raise AssertionError("autograd is enabled inside the cloned learner's loop")
    for t in tensors:
        if t.requires_grad or t.grad_fn is not None:
            raise AssertionError("a tensor in the cloned learner's loop carries an autograd graph")
