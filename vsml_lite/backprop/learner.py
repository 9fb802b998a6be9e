"""The cloned learner: Chapter 3's network of sub-LSTMs run in two phases, learning by
backpropagation with no gradient computed anywhere (Section 3.2, Eq. 14, Appendix D). Chapter 4.

The learner is a :class:`~vsml_lite.network.VSMLNetwork` (the same grid, ticks and message
slots as every chapter) built by :func:`make_learner`: the sum over the grid (the paper's
``Σ_a``, so a layer computes ``y_b = Σ_a tanh(x_a) · w_ab + b_ab``), no output bound, and one
learner step is :meth:`~vsml_lite.network.VSMLNetwork.learn_step`: a forward phase (the input
``x_a`` in the forward messages), a backward phase (the same ``x_a``, and the error ``e_b`` in
the backward messages: Eq. 14's ``U`` term), then the states averaged over each learner's
copies (Appendix D).

This module says where a weight lives in the state: every sub-LSTM ``(a, b)`` holds ``w_ab``
and a bias ``b_ab`` in slots :data:`~vsml_lite.cloning.WEIGHT_SLOT` / ``BIAS_SLOT`` of its ``h``
and ``c``, divided by ``state_scale`` (Appendix C), as Chapter 3's forward clone holds them.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

from ..cloning import BIAS_SLOT, WEIGHT_SLOT
from ..config import Config
from ..device import make_generator
from ..layer import OUTPUT_SLOT, LayerState, SubLSTM
from ..network import VSMLNetwork
from .ground_truth import Weights

#: The message layout a clone's V_M was trained in. Layout 2 (today's): each layer's output is
#: read from :data:`~vsml_lite.layer.OUTPUT_SLOT` of its forward messages, as in Chapter 3's
#: forward clone and every other chapter. Layout 1 (clones made before the learner became the
#: network in two phases) read it from slot 0, the input's slot.
CLONE_LAYOUT = 2


def upgrade_clone_state(state_dict: Dict[str, torch.Tensor], layout: int) -> Dict[str, torch.Tensor]:
    """A clone's V_M (a :class:`SubLSTM` state dict) made in message ``layout`` as it reads in
    :data:`CLONE_LAYOUT`. From layout 1: the forward projection's slots 0 and
    :data:`~vsml_lite.layer.OUTPUT_SLOT` swap places (``fwd_proj`` columns, ``fwd_bias``
    entries). The layer computes exactly what it did; its output just arrives in the other slot
    (a test holds the two equal)."""
    if layout == CLONE_LAYOUT:
        return dict(state_dict)
    if layout != 1:
        raise ValueError(f"unknown clone layout {layout!r}; known: 1, {CLONE_LAYOUT}")
    perm = list(range(state_dict["fwd_bias"].shape[0]))
    perm[0], perm[OUTPUT_SLOT] = OUTPUT_SLOT, 0
    out = dict(state_dict)
    out["fwd_proj"] = state_dict["fwd_proj"][:, perm].clone()
    out["fwd_bias"] = state_dict["fwd_bias"][perm].clone()
    return out


def state_from_weights(net: VSMLNetwork, weights: Weights, copies: int, state_scale: float) -> List[LayerState]:
    """A state of ``net`` that holds ``weights`` (``[G, A, B]`` per layer) in every one of
    ``copies`` copies of each of the ``G`` learners (copies of one learner consecutive):
    ``w`` and ``b`` divided by ``state_scale`` in the weight and bias slots of ``h`` and ``c``,
    zero messages. Each tensor is ``[G·copies, A, B, H]``."""
    sizes = net.layer_sizes
    if len(weights) != len(sizes) - 1:
        raise ValueError(f"need weights for {len(sizes) - 1} layers, got {len(weights)}")
    H, M = net.lstm.hidden_size, net.lstm.msg_size
    state = []
    for (w, b), A, B in zip(weights, sizes[:-1], sizes[1:]):
        if w.shape[1:] != (A, B) or b.shape != w.shape:
            raise ValueError(f"layer weights must be [G, {A}, {B}], got {list(w.shape)}, {list(b.shape)}")
        G = w.shape[0]
        c = torch.zeros(G, A, B, H, dtype=w.dtype, device=w.device)
        c[..., WEIGHT_SLOT], c[..., BIAS_SLOT] = w / state_scale, b / state_scale
        c = c.repeat_interleave(copies, dim=0)  # [G·n, A, B, H]
        n = G * copies
        state.append(LayerState(c.clone(), c, w.new_zeros(n, A, M), w.new_zeros(n, B, M)))
    return state


def read_weights(state: List[LayerState], groups: int, state_scale: float) -> Weights:
    """The weights and biases the state holds (``state_scale ×`` the slots of ``c``), averaged
    over each of the ``groups`` learners' copies: ``[G, A, B]`` per layer."""
    out = []
    for s in state:
        c = s.c.reshape(groups, s.c.shape[0] // groups, *s.c.shape[1:]).mean(dim=1)
        out.append((state_scale * c[..., WEIGHT_SLOT], state_scale * c[..., BIAS_SLOT]))
    return out


@torch.no_grad()
def predict(net: VSMLNetwork, state: List[LayerState], x: torch.Tensor, groups: int, chunk: int = 256) -> torch.Tensor:
    """Logits of each of the ``groups`` learners for the same examples ``x [E, A_0]`` without
    learning (a forward phase from each learner's first copy; the state is discarded).
    Returns ``[G, E, B]``."""
    n = state[0].h.shape[0] // groups
    first = [(s.h[::n], s.c[::n]) for s in state]  # [G, A, B, H]
    outs = []
    for start in range(0, x.shape[0], chunk):
        xe = x[start:start + chunk]
        E = xe.shape[0]
        # The phase writes its own messages, so the state's are placeholders here.
        layers = [LayerState(h.repeat_interleave(E, 0), c.repeat_interleave(E, 0), s.fwd_in[:1], s.bwd_in[:1])
                  for (h, c), s in zip(first, state)]
        _, _, y = net.forward_phase(layers, xe.repeat(groups, 1))
        outs.append(y.reshape(groups, E, -1))
    return torch.cat(outs, dim=1)


def learning_rate(cfg: Config) -> float:
    """η of the cloned SGD on ``w``: the state holds ``w / state_scale``, so an update of
    ``update_scale`` in the state is ``state_scale · update_scale`` on ``w``."""
    p = cfg.backprop_cloning
    return p.state_scale * p.update_scale


def make_learner(lstm: SubLSTM, cfg: Config, layer_sizes: Sequence[int], fused: bool = True) -> VSMLNetwork:
    """The cloned learner: a :class:`~vsml_lite.network.VSMLNetwork` running ``lstm`` with the
    micro ticks of ``cfg.backprop_cloning``, the sum over the grid, no output bound and
    Appendix D's state clip (``cfg.network.meta_test_state_clip``), for cloning and
    meta-testing alike. ``fused=False`` under ``torch.func.vmap``."""
    p = cfg.backprop_cloning
    return VSMLNetwork(layer_sizes, micro_ticks=p.micro_ticks, reduce="sum", output_bound=None, lstm=lstm,
                       state_clip=cfg.network.meta_test_state_clip, fused=fused)


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
