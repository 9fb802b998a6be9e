"""Learning algorithm cloning, part 2: backpropagation in the forward dynamics (Section 3.2,
Eq. 14, Appendices B and D, Table 1). Chapter 3 of the book.

Every sub-LSTM ``(a, b)`` of a dense VSML layer holds a weight ``w_ab`` and a bias ``b_ab`` in
its cell state (slots :data:`~vsml_lite.cloning.WEIGHT_SLOT` / ``BIAS_SLOT``, divided by
``state_scale``, Appendix C) and is optimised to do, purely by running forward, what one connection of a
``tanh`` network does under backpropagation:

* **forward phase** (input ``x_a`` in its forward message, no error): send
  ``y = tanh(x_a) · w_ab + b_ab`` forward; the layer sums the messages over ``a``, so output
  neuron ``b`` receives ``Σ_a tanh(x_a) w_ab + b_ab``;
* **backward phase** (the same ``x_a`` still in its forward message, the error ``e_b`` in the
  backward message of Eq. 14's ``U`` term): send ``e' = e_b · w_ab · (1 - tanh²(x_a))`` backward
  (the layer sums over ``b``: the chain rule) and change its own state so that
  ``w_ab ← w_ab - η · e_b · tanh(x_a)`` and ``b_ab ← b_ab - η · e_b`` (η = 0.02, see
  :func:`learning_rate`).

A learner made of such layers (:class:`CloneLearner`) learns with no gradient computed
anywhere: it runs the forward phase, compares its output with the label
(``e = softmax(y) - onehot``), runs the backward phase, and averages its states over a learner
batch of 64 copies (Appendix D). The same network trained by autograd-SGD
(:func:`mlp_sgd_step`, same parameterisation, initial weights, data order and learning rate) is
the ground truth the clone is trained towards and compared with.

Cloning follows Appendix B's curriculum, one stage after another with one Adam optimiser:

1. ``local``: single sub-LSTMs on random data (Table 1: inputs ~ N(0, 2²)), random weights and
   random incoming errors;
2. ``shallow``: a one-layer learner on MNIST, matched in its outputs, backward errors and
   weights against autograd;
3. ``deep_gt``: a two-layer learner on MNIST whose hidden layer receives the ground-truth
   backward errors;
4. ``deep_own``: the same with the learner's own backward errors.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .artifacts import live_path, load_checkpoint, save_artifact, save_checkpoint
from .cloning import BIAS_SLOT, WEIGHT_SLOT, _StopRequest
from .config import STATE_SCALE, Config
from .data import NORMALIZATION, NUM_CLASSES, TensorData, downsample_dataset, load_dataset
from .device import get_device, make_generator
from .network import LayerState, SubLSTM, cross_entropy_error, dense_ticks

#: Slot of the forward message carrying a layer's input x (and its output y to the next layer)
#: and slot of the backward message carrying the error e (and e' to the layer below). Using
#: the same slot in both directions is what lets cloned layers stack.
VALUE_SLOT = 0

#: Curriculum stages of Appendix B, in order.
STAGES = ("local", "shallow", "deep_gt", "deep_own")
#: Name of the artifact kind (``vsml_lite/pretrained/backprop_cloning_<preset>``).
KIND = "backprop_cloning"

Weights = List[Tuple[torch.Tensor, torch.Tensor]]  # per layer: w [G, A, B], b [G, A, B]


# ----------------------------------------------------------------------------------------
# Ground truth: the tanh network the clone imitates, trained by autograd.
# ----------------------------------------------------------------------------------------

def init_weights(layer_sizes: Sequence[int], groups: int, generator: torch.Generator,
                 device=None, dtype=torch.float32) -> Weights:
    """Fresh weights for ``groups`` independent learners: ``w ~ N(0, 1/A)`` (a dense layer's
    usual scale), ``b = 0``; drawn on the CPU so a seed gives the same weights everywhere."""
    out = []
    for A, B in zip(layer_sizes[:-1], layer_sizes[1:]):
        w = torch.randn(groups, A, B, generator=generator) / A ** 0.5
        out.append((w.to(device, dtype), torch.zeros(groups, A, B, device=device, dtype=dtype)))
    return out


def mlp_forward(weights: Weights, x: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
    """The network every sub-LSTM grid imitates: layer ``l`` maps its input ``x [G, n, A]`` to
    ``y_b = Σ_a tanh(x_a) · w_ab + b_ab`` (one ``tanh(x) w + b`` per connection, Eq. 13,
    summed over the grid).

    Returns:
        the input of every layer (``[G, n, A_l]`` each; the first is ``x``) and the output
        ``[G, n, B_last]``.
    """
    inputs = []
    for w, b in weights:
        inputs.append(x)
        x = torch.tanh(x) @ w + b.sum(dim=1, keepdim=True)  # [G, n, B]
    return inputs, x


def mlp_backprop(weights: Weights, x: torch.Tensor, labels: torch.Tensor):
    """Autograd's view of one learner step on the mean cross-entropy over each group's batch.

    Args:
        weights: per layer ``(w, b)``, ``[G, A, B]`` each.
        x: ``[G, n, A_0]``; labels: ``[G, n]``.

    Returns:
        ``(inputs, logits, errors, grads)``: layer inputs and logits as in :func:`mlp_forward`;
        ``errors[l]`` ``[G, n, A_l]`` the per-example error arriving at layer ``l``'s inputs
        (``n ×`` the gradient of the mean loss, so the output error is ``softmax - onehot``);
        ``grads`` per layer ``(dL/dw, dL/db)`` of the mean loss, ``[G, A, B]`` each.
    """
    n = x.shape[1]
    with torch.enable_grad():
        params = [(w.detach().requires_grad_(), b.detach().requires_grad_()) for w, b in weights]
        x = x.detach().requires_grad_()
        inputs, h = [], x
        for w, b in params:
            inputs.append(h)
            h = torch.tanh(h) @ w + b.sum(dim=1, keepdim=True)
        loss = nn.functional.cross_entropy(h.reshape(-1, h.shape[-1]), labels.reshape(-1),
                                           reduction="sum") / n  # mean over each group's batch
        flat = [t for wb in params for t in wb]
        g = torch.autograd.grad(loss, flat + inputs)
    grads = [(g[2 * i], g[2 * i + 1]) for i in range(len(params))]
    errors = [e * n for e in g[len(flat):]]
    return [t.detach() for t in inputs], h.detach(), errors, grads


def mlp_sgd_step(weights: Weights, x: torch.Tensor, labels: torch.Tensor, lr: float):
    """One step of plain SGD with autograd: returns ``(new_weights, logits)``."""
    _, logits, _, grads = mlp_backprop(weights, x, labels)
    new = [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(weights, grads)]
    return new, logits


# ----------------------------------------------------------------------------------------
# The clone as a learner.
# ----------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------
# Cloning: the losses of the four curriculum stages.
# ----------------------------------------------------------------------------------------

def _smooth_l1(a, b):
    return nn.functional.smooth_l1_loss(a, b)


def rollout_losses(learner: CloneLearner, weights: Weights, batches, lr: float, value_unit: float,
                   update_unit: float = 1.0, errors_from: str = "labels",
                   given_errors: bool = False, state: Optional["CloneState"] = None):
    """Run the learner and autograd-SGD side by side for a few steps and measure how far the
    learner is from backpropagation.

    Args:
        learner: the learner under training (gradients flow into ``learner.lstm``).
        weights: starting weights ``[G, A, B]`` per layer, shared by learner and ground truth.
        batches: a list of ``(x [G, n, A_0], target)``; ``target`` is ``labels [G, n]`` when
            ``errors_from == "labels"``, else the output errors ``[G, n, B_last]`` themselves
            (stage ``local``'s random errors).
        lr: η, the learning rate of the cloned SGD (:func:`learning_rate`).
        value_unit: forward outputs and backward errors are compared in this unit.
        update_unit: weights are compared in units of ``update_unit · lr``.
        given_errors: feed the lower layers the ground-truth backward errors (``deep_gt``).
        state: the learner's state to start from (it must hold ``weights``); default
            :meth:`CloneLearner.state_from_weights`.

    Returns:
        ``(losses, state)``: the learner's final state and
        Smooth L1 losses (means over steps): ``forward`` (every layer's output) and
        ``backward`` (every layer's error sent down), in units of ``value_unit``; ``update``
        (weights read from the state after each backward phase and state averaging, against
        the ground-truth trajectory, in units of ``update_unit · η``). Only the state after a full step is held to the weights: what the state does
        during the forward phase is the clone's own business.
    """
    G, n = batches[0][0].shape[:2]
    if state is None:
        state = learner.state_from_weights(weights, n)
    loss = {"forward": 0.0, "backward": 0.0, "update": 0.0}
    for x, target in batches:
        if errors_from == "labels":
            inputs_gt, logits_gt, errs_gt, grads = mlp_backprop(weights, x, target)
            out_err = cross_entropy_error(logits_gt.reshape(G * n, -1), target.reshape(-1))
        else:  # random output errors: the gradient of Σ e·y, the same formulas
            inputs_gt, logits_gt = mlp_forward(weights, x)
            errs_gt, grads = _errors_and_grads(weights, inputs_gt, target)
            out_err = target.reshape(G * n, -1)
        outputs_gt = inputs_gt[1:] + [logits_gt]
        state, inputs, y = learner.forward(state, x.reshape(G * n, -1))
        outs = inputs[1:] + [y]
        loss["forward"] = loss["forward"] + sum(
            _smooth_l1(o / value_unit, t.reshape(G * n, -1) / value_unit) for o, t in zip(outs, outputs_gt)) / len(outs)
        given = [e.reshape(G * n, -1) for e in errs_gt] if given_errors else None
        state, errs = learner.backward(state, inputs, out_err, given)
        loss["backward"] = loss["backward"] + sum(
            _smooth_l1(e / value_unit, t.reshape(G * n, -1) / value_unit) for e, t in zip(errs, errs_gt)) / len(errs)
        state = learner.average(state)
        weights = [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(weights, grads)]
        loss["update"] = loss["update"] + _weight_loss(learner.read_weights(state), weights, update_unit * lr)
    k = len(batches)
    return {"forward": loss["forward"] / k, "backward": loss["backward"] / k, "update": loss["update"] / k}, state


def _errors_and_grads(weights: Weights, inputs: List[torch.Tensor], out_err: torch.Tensor):
    """Backpropagate given per-example output errors ``[G, n, B]`` by the formulas the clone
    imitates; gradients are of the batch mean. Returns ``(errors, grads)`` like
    :func:`mlp_backprop`."""
    n = out_err.shape[1]
    errors, grads = [None] * len(weights), [None] * len(weights)
    e = out_err
    for l in reversed(range(len(weights))):
        w, _ = weights[l]
        t = torch.tanh(inputs[l])  # [G, n, A]
        gw = t.transpose(1, 2) @ e / n  # [G, A, B]: mean over the batch of e · tanh(x)
        gb = (e.sum(dim=1, keepdim=True) / n).expand_as(w)  # every b_ab gets e_b
        grads[l] = (gw, gb)
        errors[l] = (e @ w.transpose(1, 2)) * (1 - t ** 2)  # e' = Σ_b e_b w_ab (1 - tanh²x_a)
        e = errors[l]
    return errors, grads


def _weight_loss(read: Weights, target: Weights, scale: float) -> torch.Tensor:
    return sum(_smooth_l1(rw / scale, tw / scale) + _smooth_l1(rb / scale, tb / scale)
               for (rw, rb), (tw, tb) in zip(read, target)) / (2 * len(read))


def stage_sizes(cfg: Config, stage: str) -> List[int]:
    """Layer sizes of a curriculum stage's learner."""
    p = cfg.backprop_cloning
    A = p.input_side ** 2
    return {"local": [1, 1], "shallow": [A, NUM_CLASSES],
            "deep_gt": [A, p.deep_hidden, NUM_CLASSES], "deep_own": [A, p.deep_hidden, NUM_CLASSES]}[stage]


def sample_stage(cfg: Config, stage: str, data: Optional[TensorData], gen: torch.Generator, device):
    """One training example of a stage: ``(weights, batches, errors_from, given_errors)``.

    ``local``: ``local_batch`` sub-LSTMs in groups of ``local_copies`` that share
    ``w, b ~ U(-r, r)`` and average their states after every step (a learner batch on a single
    connection), inputs ``~ N(0, std²)`` (Table 1) and output errors ``~ U(-r_e, r_e)``. Network stages:
    ``net_groups`` learners of ``net_learner_batch`` copies on MNIST batches, starting from
    weights after a random number of plain SGD steps (see ``warmup_max``)."""
    p = cfg.backprop_cloning
    sizes = stage_sizes(cfg, stage)
    if stage == "local":
        n = p.local_copies
        G = p.local_batch // n
        w = (torch.rand(G, 1, 1, generator=gen) * 2 - 1) * p.param_range
        b = (torch.rand(G, 1, 1, generator=gen) * 2 - 1) * p.param_range
        steady = None
        if p.steady_fraction > 0:  # background-pixel learners: one input for all copies and steps
            steady = torch.rand(G, 1, 1, generator=gen) < p.steady_fraction
            level = torch.randn(G, 1, 1, generator=gen) * cfg.data.random_std
        batches = []
        for _ in range(p.rollout):
            x = torch.randn(G, n, 1, generator=gen) * cfg.data.random_std
            if steady is not None:
                x = torch.where(steady, level, x)
            e = (torch.rand(G, n, 1, generator=gen) * 2 - 1) * p.error_range
            if p.hold_fraction > 0:  # some learners see no error at all this step: hold still
                e = e * (torch.rand(G, 1, 1, generator=gen) >= p.hold_fraction)
            batches.append((x.to(device), e.to(device)))
        return [(w.to(device), b.to(device))], batches, "errors", False
    if data is None:
        raise ValueError(f"stage {stage!r} needs the MNIST training split")
    G, n = p.net_groups, p.net_learner_batch
    weights = init_weights(sizes, G, gen, device)
    warm = int(torch.randint(p.warmup_max + 1, (), generator=gen))
    for _ in range(warm):  # plain SGD from the fresh weights: realistic weights to start from
        idx = torch.randint(len(data), (G, n), generator=gen)
        weights, _ = mlp_sgd_step(weights, data.images[idx].to(device), data.labels[idx].to(device),
                                  learning_rate(cfg))
    batches = []
    for _ in range(p.rollout):
        idx = torch.randint(len(data), (G, n), generator=gen)
        batches.append((data.images[idx].to(device), data.labels[idx].to(device)))
    return weights, batches, "labels", stage == "deep_gt"


def _refresh_pool(pool: Dict[str, object], learner: "CloneLearner", fresh: Weights, copies: int,
                  horizon: int, gen: torch.Generator):
    """Every stage keeps its learners from one Adam step to the next, so the clone is also
    trained on the states it reaches itself after many learner steps, not only on states
    fresh from :meth:`CloneLearner.state_from_weights`. Each step, each learner is replaced
    by a fresh one (weights ``fresh``) with probability ``1 / horizon``.
    The ground truth restarts every Adam step from the weights the state holds, so an old
    deviation is not charged again. Returns the ``(weights, state)`` to start from."""
    n = copies  # copies per learner, as in the stage's batches
    fresh_state = learner.state_from_weights(fresh, n)
    if not pool:
        return fresh, fresh_state
    G = fresh[0][0].shape[0]
    reset = torch.rand(G, generator=gen) < 1.0 / horizon  # [G]
    reset = reset.to(fresh[0][0].device)
    weights = [(torch.where(reset[:, None, None], fw, pw), torch.where(reset[:, None, None], fb, pb))
               for (fw, fb), (pw, pb) in zip(fresh, pool["weights"])]
    r = reset.repeat_interleave(n)[:, None, None, None]
    layers = [(torch.where(r, fh, ph), torch.where(r, fc, pc))
              for (fh, fc), (ph, pc) in zip(fresh_state.layers, pool["state"])]
    return weights, CloneState(layers, G, n)


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


def stage_schedule(cfg: Config) -> List[Tuple[str, int]]:
    """``[(stage, iterations), ...]`` in curriculum order, stages with 0 iterations left out."""
    p = cfg.backprop_cloning
    its = {"local": p.local_iterations, "shallow": p.shallow_iterations,
           "deep_gt": p.deep_gt_iterations, "deep_own": p.deep_own_iterations}
    return [(s, its[s]) for s in STAGES if its[s] > 0]


@dataclass
class CloneTrainResult:
    """What :func:`train_backprop_cloning` returns: the sub-LSTM and its loss curves."""

    lstm: SubLSTM
    curves: Dict[str, List] = field(default_factory=lambda: {"iteration": [], "stage": [], "forward": [],
                                                             "backward": [], "update": []})
    seconds: float = 0.0
    resumed_from: int = 0
    #: V_M at the end of each finished stage (state dicts on the CPU); ``"local"`` is the clone
    #: made from random data only (Figure 9).
    snapshots: Dict[str, Dict[str, torch.Tensor]] = field(default_factory=dict)


def train_backprop_cloning(cfg: Config, checkpoint: Union[str, Path, None] = None,
                           progress: bool = True, data: Optional[TensorData] = None,
                           init: Optional[Dict[str, torch.Tensor]] = None) -> CloneTrainResult:
    """Clone backpropagation into a sub-LSTM through the curriculum of Appendix B.

    Args:
        cfg: ``cfg.backprop_cloning`` sets the stages, batches and sizes.
        checkpoint: file for resumable training; it is rewritten every ``checkpoint_every``
            iterations and on Ctrl-C / SIGTERM, and a run resumes from it with the same random
            stream (so the result equals an uninterrupted run).
        progress: tqdm bar over all stages.
        data: the MNIST training split (downsampled to ``input_side``); loaded when ``None``
            and a network stage is scheduled.
        init: V_M to start from (a :class:`SubLSTM` state dict, e.g. a shipped clone's) instead
            of a fresh sub-LSTM: fine-tuning (``scripts/finetune_backprop_clone.py``). A
            checkpoint, when there is one, takes precedence.
    """
    from tqdm.auto import tqdm

    p = cfg.backprop_cloning
    if p.local_batch % p.local_copies:
        raise ValueError(f"backprop_cloning.local_batch ({p.local_batch}) must be a multiple of "
                         f"backprop_cloning.local_copies ({p.local_copies})")
    device = get_device(cfg.device)
    schedule = stage_schedule(cfg)
    total = sum(its for _, its in schedule)
    if data is None and any(s != "local" for s, _ in schedule):
        data = downsample_dataset(load_dataset("mnist", train=True, root=cfg.data.root,
                                               download=cfg.data.download), p.input_side)
    lstm = new_clone_lstm(cfg)
    if init is not None:
        lstm.load_state_dict(init)
    lstm = lstm.to(device)
    opt = sched = None  # a fresh Adam per stage: the stages' losses differ in scale
    pool: Dict[str, object] = {}  # the current stage's persistent learners (see _refresh_pool)
    gen = make_generator(cfg.seed + 1)
    result = CloneTrainResult(lstm=lstm)
    running = {"forward": 0.0, "backward": 0.0, "update": 0.0}
    state = load_checkpoint(checkpoint) if checkpoint is not None else None
    if state is not None:
        if state["config"] != cfg.to_dict():
            raise ValueError(f"checkpoint {checkpoint} was made with another config; delete it or "
                             "use the config it records")
        lstm.load_state_dict(state["lstm"])
        gen.set_state(state["generator"])
        result.curves, result.seconds = state["curves"], state["seconds"]
        result.resumed_from, running = state["iteration"], state["running"]
        result.snapshots = state["snapshots"]
        pool = {k: [(a.to(device), b.to(device)) for a, b in v] for k, v in state["pool"].items()}

    def save(iteration: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"lstm": lstm.state_dict(), "optimizer": opt.state_dict() if opt else None,
                                         "scheduler": sched.state_dict() if sched else None,
                                         "generator": gen.get_state(), "iteration": iteration,
                                         "curves": result.curves, "running": running,
                                         "snapshots": result.snapshots, "pool": pool,
                                         "seconds": result.seconds, "config": cfg.to_dict()})

    learners = {s: make_learner(lstm, cfg, stage_sizes(cfg, s)) for s, _ in schedule}
    bar = tqdm(total=total, initial=result.resumed_from, disable=not progress, desc="backprop cloning")
    started, done, first = time.perf_counter(), 0, 0
    with _StopRequest() as stop:
        for stage, its in schedule:
            if result.resumed_from >= first + its:  # finished before the checkpoint
                first += its
                continue
            if result.resumed_from <= first:  # a new stage: its own pool of learners
                pool = {}
            opt = torch.optim.Adam(lstm.parameters(), lr=p.lr if stage == "local" else p.net_lr)
            # Cosine decay to 0 over the stage: the clone must be precise, not just close.
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda i, its=its: 0.5 * (1 + math.cos(math.pi * min(i, its) / its)))
            if state is not None and first < result.resumed_from:  # resuming inside this stage
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
            for it in range(first, first + its):
                done = it + 1
                if it < result.resumed_from:
                    continue
                weights, batches, errors_from, given = sample_stage(cfg, stage, data, gen, device)
                # Continue the pool's learners; fresh ones replace a few (see _refresh_pool).
                weights, start = _refresh_pool(pool, learners[stage], weights, batches[0][0].shape[1],
                                               p.horizon, gen)
                losses, final = rollout_losses(learners[stage], weights, batches, learning_rate(cfg), p.value_unit,
                                               p.update_unit, errors_from, given, state=start)
                pool["state"] = [(h.detach(), c.detach()) for h, c in final.layers]
                pool["weights"] = [(w.detach(), b.detach()) for w, b in learners[stage].read_weights(final)]
                loss = losses["forward"] + losses["backward"] + p.update_loss_weight * losses["update"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                for k in running:
                    running[k] += losses[k].item()
                stage_end = done == first + its
                if done % p.log_every == 0 or stage_end:
                    span = done - (result.curves["iteration"][-1] if result.curves["iteration"] else 0)
                    result.curves["iteration"].append(done)
                    result.curves["stage"].append(stage)
                    for k in running:
                        result.curves[k].append(running[k] / span)
                        running[k] = 0.0
                    bar.set_postfix(stage=stage, fwd=f"{result.curves['forward'][-1]:.1e}",
                                    bwd=f"{result.curves['backward'][-1]:.1e}",
                                    upd=f"{result.curves['update'][-1]:.1e}")
                bar.update(1)
                if stage_end:
                    result.snapshots[stage] = {k: v.detach().cpu().clone() for k, v in lstm.state_dict().items()}
                if done % p.checkpoint_every == 0 or stop.requested:
                    result.seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    save(done)
                stop.stop_if_requested("backprop cloning", done, checkpoint, bar)
            first += its
    bar.close()
    result.seconds += time.perf_counter() - started
    save(total)
    return result


# ----------------------------------------------------------------------------------------
# Fidelity: the clone against autograd on held-out data.
# ----------------------------------------------------------------------------------------

def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return nn.functional.cosine_similarity(a.reshape(1, -1), b.reshape(1, -1)).item()


def _rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


@torch.no_grad()
def one_step_comparison(lstm: SubLSTM, cfg: Config, data: TensorData, layer_sizes: Sequence[int],
                        learners: int = 4, copies: int = 16, warmup: int = 100,
                        seed: int = 0) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """One learner step of the clone beside autograd's, on examples from ``data``.

    ``learners`` cloned learners of ``copies`` copies start from fresh weights and learn on
    their own for ``warmup`` steps, so the comparison happens in the states the clone reaches
    itself. Then they take one more step on a fresh batch, and autograd takes the same step
    from the weights their states hold.

    Returns:
        ``{"forward outputs": (clone, autograd), "errors sent down": (...),
        "weight updates": (...)}``, flat tensors: the logits, the errors every layer sends
        down, and the change of every weight and bias (read from the state after averaging
        over the copies; autograd's is ``-η · gradient``).
    """
    gen = make_generator(seed)
    device = next(lstm.parameters()).device
    learner = make_learner(lstm, cfg, layer_sizes)
    G, n = learners, copies
    state = learner.state_from_weights(init_weights(layer_sizes, G, gen, device), n)

    def batch():
        idx = torch.randint(len(data), (G, n), generator=gen)
        return data.images[idx].to(device), data.labels[idx].to(device)

    for _ in range(warmup):
        x, labels = batch()
        state, _ = learner.step(state, x.reshape(G * n, -1), labels.reshape(-1))
    x, labels = batch()
    weights = learner.read_weights(state)
    _, logits_gt, errs_gt, grads = mlp_backprop(weights, x, labels)
    state, inputs, y = learner.forward(state, x.reshape(G * n, -1))
    state, errs = learner.backward(state, inputs, cross_entropy_error(y, labels.reshape(-1)))
    after = learner.read_weights(learner.average(state))
    lr = learning_rate(cfg)
    flat = lambda ts: torch.cat([t.reshape(-1) for t in ts]).cpu()  # noqa: E731
    return {"forward outputs": (flat([y]), flat([logits_gt])),
            "errors sent down": (flat(errs), flat(errs_gt)),
            "weight updates": (flat([a - w for pair_a, pair_w in zip(after, weights) for a, w in zip(pair_a, pair_w)]),
                               flat([-lr * g for pair in grads for g in pair]))}


def fidelity(lstm: SubLSTM, cfg: Config, data: TensorData, layer_sizes: Sequence[int], **kw) -> Dict[str, float]:
    """Cosine similarity and relative error (``|clone - autograd| / |autograd|``) of the
    outputs, backward errors and weight updates of :func:`one_step_comparison` (same
    arguments). Exact backpropagation gives cosine 1 and relative error 0."""
    pairs = one_step_comparison(lstm, cfg, data, layer_sizes, **kw)
    out = {}
    for name, key in (("forward outputs", "forward"), ("errors sent down", "backward"), ("weight updates", "update")):
        c, t = pairs[name]
        out[f"{key}_cosine"], out[f"{key}_rel_error"] = _cosine(c, t), _rel_error(c, t)
    return out


@torch.no_grad()
def hold_drift(lstm: SubLSTM, cfg: Config, steps: int = 1000, weights: Sequence[float] = (-1.0, -0.5, -0.2, 0.2, 0.5, 1.0),
               copies: int = 16, every: int = 10, seed: int = 0,
               input_value: Optional[float] = None) -> Dict[str, torch.Tensor]:
    """How well a clone holds its weights when nothing should change them.

    Single connections holding ``weights`` (bias 0) run ``steps`` learner steps with no error
    at all (forward phase, backward phase with ``e = 0``, averaging over ``copies``). Exact
    backpropagation leaves every weight as it is.

    Args:
        input_value: ``None``: inputs like Table 1's, ``N(0, std²)`` afresh for every copy and
            step. A number: that input for every copy and step, like a background pixel
            (:func:`background_value`), which every MNIST image shows the same.

    Returns:
        ``steps [P]``, ``weights [W]``, ``ratio [P, W]`` (the weight read from the state over
        the weight it started from, every ``every`` steps) and ``bias [P, W]`` (the bias read
        from the state; it started at 0).
    """
    device = next(lstm.parameters()).device
    learner = make_learner(lstm, cfg, [1, 1])
    w0 = torch.tensor(list(weights), dtype=torch.float32, device=device)[:, None, None]  # [W, 1, 1]
    state = learner.state_from_weights([(w0, torch.zeros_like(w0))], copies)
    gen = make_generator(seed)
    N = w0.shape[0] * copies
    at, ratios, biases = [], [], []
    for t in range(1, steps + 1):
        if input_value is None:
            x = (torch.randn(N, 1, generator=gen) * cfg.data.random_std).to(device)
        else:
            x = torch.full((N, 1), float(input_value), device=device)
        state, inputs, _ = learner.forward(state, x)
        state, _ = learner.backward(state, inputs, x.new_zeros(N, 1))
        state = learner.average(state)
        if t % every == 0 or t == steps:
            at.append(t)
            (w, b), = learner.read_weights(state)
            ratios.append((w[:, 0, 0] / w0[:, 0, 0]).cpu())
            biases.append(b[:, 0, 0].cpu())
    return {"steps": torch.tensor(at), "ratio": torch.stack(ratios), "bias": torch.stack(biases),
            "weights": w0[:, 0, 0].cpu()}


def background_value(dataset: str) -> float:
    """The standardised value of a blank pixel (raw 0) of ``dataset``: what every MNIST image
    shows in most of its pixels, so a connection from such a pixel sees one constant input."""
    if dataset not in NORMALIZATION:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(NORMALIZATION)}")
    mean, std = NORMALIZATION[dataset]
    return -mean / std


# ----------------------------------------------------------------------------------------
# Meta-test: the clone learns MNIST / Fashion-MNIST; plain SGD beside it.
# ----------------------------------------------------------------------------------------

def assert_no_autograd(*tensors: torch.Tensor) -> None:
    """Raise when autograd is recording or any tensor carries a graph: the cloned learner must
    learn by running forward only."""
    if torch.is_grad_enabled():
        raise AssertionError("autograd is enabled inside the cloned learner's loop")
    for t in tensors:
        if t.requires_grad or t.grad_fn is not None:
            raise AssertionError("a tensor in the cloned learner's loop carries an autograd graph")


def learning_curves(lstm: SubLSTM, cfg: Config, train: TensorData, test: TensorData,
                    layer_sizes: Sequence[int], seeds: Sequence[int], progress: bool = True,
                    desc: str = "meta-test") -> Dict[str, object]:
    """Run the cloned learner and plain SGD on the same network, data order and initial
    weights, one learner per seed (all seeds in one batched run).

    Both see ``test_steps`` batches of ``test_learner_batch`` examples (a seeded permutation of
    ``train`` per seed) and learn with rate :func:`learning_rate`. The clone runs under
    ``torch.no_grad`` with :func:`assert_no_autograd` checked every step; SGD uses autograd.

    Returns:
        ``steps [T]``, ``eval_steps [P]`` and for ``clone`` and ``sgd``: ``train_loss [S, T]``
        (mean cross-entropy of each step's batch, before learning from it) and
        ``test_accuracy [S, P]`` (on the first ``eval_examples`` of ``test``).
    """
    from tqdm.auto import tqdm

    p = cfg.backprop_cloning
    device = next(lstm.parameters()).device
    S, n, T = len(seeds), p.test_learner_batch, p.test_steps
    orders = [torch.randperm(len(train), generator=make_generator(s)) for s in seeds]
    weights = [init_weights(layer_sizes, 1, make_generator(10_000 + s), device) for s in seeds]
    weights = [(torch.cat([w[l][0] for w in weights]), torch.cat([w[l][1] for w in weights]))
               for l in range(len(layer_sizes) - 1)]  # [S, A, B] per layer
    learner = make_learner(lstm, cfg, layer_sizes)
    xs_test = test.images[:p.eval_examples].to(device)
    ys_test = test.labels[:p.eval_examples].to(device)
    out = {"steps": list(range(1, T + 1)), "eval_steps": [],
           "clone": {"train_loss": torch.zeros(S, T), "test_accuracy": []},
           "sgd": {"train_loss": torch.zeros(S, T), "test_accuracy": []}}
    with torch.no_grad():
        state = learner.state_from_weights(weights, n)
    sgd = weights

    def evaluate(step):
        out["eval_steps"].append(step)
        with torch.no_grad():
            acc_c = (learner.predict(state, xs_test).argmax(-1) == ys_test).float().mean(-1)
            _, logits = mlp_forward(sgd, xs_test.expand(S, -1, -1))
            acc_s = (logits.argmax(-1) == ys_test).float().mean(-1)
        out["clone"]["test_accuracy"].append(acc_c.cpu())
        out["sgd"]["test_accuracy"].append(acc_s.cpu())

    evaluate(0)
    for t in tqdm(range(T), disable=not progress, desc=desc):
        idx = torch.stack([o[(t * n + torch.arange(n)) % len(train)] for o in orders])  # [S, n]
        x, y = train.images[idx].to(device), train.labels[idx].to(device)
        with torch.no_grad():
            state, logits = learner.step(state, x.reshape(S * n, -1), y.reshape(-1))
            assert_no_autograd(logits, *[c for _, c in state.layers])
            out["clone"]["train_loss"][:, t] = nn.functional.cross_entropy(
                logits, y.reshape(-1), reduction="none").reshape(S, n).mean(1).cpu()
        sgd, logits_s = mlp_sgd_step(sgd, x, y, learning_rate(cfg))
        out["sgd"]["train_loss"][:, t] = nn.functional.cross_entropy(
            logits_s.reshape(S * n, -1), y.reshape(-1), reduction="none").reshape(S, n).mean(1).detach().cpu()
        if (t + 1) % p.eval_every == 0 or t + 1 == T:
            evaluate(t + 1)
    for k in ("clone", "sgd"):
        out[k]["test_accuracy"] = torch.stack(out[k]["test_accuracy"], dim=1)  # [S, P]
    return out


# ----------------------------------------------------------------------------------------
# The whole experiment: clone, measure fidelity, meta-test, save an artifact.
# ----------------------------------------------------------------------------------------

#: Test accuracies the paper reports for the cloned learner (Section 4, Figure 5).
PAPER_ACCURACY = {("mnist", "shallow"): 0.90, ("mnist", "deep"): 0.87,
                  ("fashion_mnist", "shallow"): 0.80, ("fashion_mnist", "deep"): 0.76}
#: The two clones: the full curriculum (Figures 5, 7, 8) and random data only (Figure 9).
CLONES = ("curriculum", "random")
#: The meta-test runs of the chapter: (clone, dataset, arrangement). The random-data clone is
#: run shallow only: Appendix B reports that random data suffices in the shallow setting.
EVALUATIONS = (("curriculum", "mnist", "shallow"), ("curriculum", "mnist", "deep"),
               ("curriculum", "fashion_mnist", "shallow"), ("curriculum", "fashion_mnist", "deep"),
               ("random", "mnist", "shallow"), ("random", "fashion_mnist", "shallow"))


def arrangement(cfg: Config, name: str) -> List[int]:
    """Layer sizes of the ``shallow`` (A -> 10) or ``deep`` (A -> 32 -> 10) learner."""
    p = cfg.backprop_cloning
    A = p.input_side ** 2
    if name == "shallow":
        return [A, NUM_CLASSES]
    if name == "deep":
        return [A, p.deep_hidden, NUM_CLASSES]
    raise ValueError(f"unknown arrangement {name!r}; valid: shallow, deep")


def load_split(cfg: Config, name: str, train: bool) -> TensorData:
    """A dataset split downsampled to the preset's ``input_side``."""
    return downsample_dataset(load_dataset(name, train=train, root=cfg.data.root, download=cfg.data.download),
                              cfg.backprop_cloning.input_side)


def run_key(clone: str, dataset: str, arch: str) -> str:
    return f"{clone}/{dataset}/{arch}"


def evaluate_clones(cfg: Config, lstms: Dict[str, SubLSTM], cache: Union[str, Path, None] = None,
                    progress: bool = True, evaluations=EVALUATIONS) -> Dict[str, Dict]:
    """Fidelity and learning curves of every run in ``evaluations``.

    ``cache``: finished runs are saved there one by one, so an interrupted evaluation resumes
    where it stopped. Returns ``{run_key: {"fidelity": {...}, "curves": {...}}}``.
    """
    p = cfg.backprop_cloning
    done = (load_checkpoint(cache) or {}) if cache is not None else {}
    if done and done.get("config") != cfg.to_dict():
        raise ValueError(f"evaluation cache {cache} was made with another config; delete it")
    done["config"] = cfg.to_dict()
    splits: Dict[Tuple[str, bool], TensorData] = {}
    for clone, dataset, arch in evaluations:
        key = run_key(clone, dataset, arch)
        if key in done:
            continue
        for train in (True, False):
            if (dataset, train) not in splits:
                splits[dataset, train] = load_split(cfg, dataset, train)
        sizes = arrangement(cfg, arch)
        lstm = lstms[clone]
        fid = fidelity(lstm, cfg, splits[dataset, False], sizes, seed=cfg.seed)
        curves = learning_curves(lstm, cfg, splits[dataset, True], splits[dataset, False], sizes,
                                 seeds=[cfg.seed + s for s in range(p.test_seeds)], progress=progress,
                                 desc=key)
        done[key] = {"fidelity": fid, "curves": curves}
        if cache is not None:
            save_checkpoint(cache, done)
    return {k: v for k, v in done.items() if k != "config"}


#: Column order of :func:`accuracy_table` (JSON records sort keys; display in this order).
ACCURACY_COLUMNS = ("clone", "dataset", "arrangement", "steps", "clone accuracy", "SGD accuracy",
                    "paper (clone)", "seeds")


def accuracy_table(results: Dict[str, Dict], cfg: Config) -> List[Dict[str, object]]:
    """Rows of the chapter's results table: final test accuracy of the clone and of SGD (mean
    ± std over seeds) beside the paper's number."""
    rows = []
    for key, r in results.items():
        clone, dataset, arch = key.split("/")
        c, s = r["curves"]["clone"]["test_accuracy"][:, -1], r["curves"]["sgd"]["test_accuracy"][:, -1]
        paper = PAPER_ACCURACY.get((dataset, arch)) if clone == "curriculum" else None
        rows.append({"clone": clone, "dataset": dataset, "arrangement": arch,
                     "steps": r["curves"]["steps"][-1],
                     "clone accuracy": f"{100 * c.mean():.1f} ± {100 * c.std():.1f}%",
                     "SGD accuracy": f"{100 * s.mean():.1f} ± {100 * s.std():.1f}%",
                     "paper (clone)": f"{100 * paper:.0f}%" if paper else "-",
                     "seeds": int(c.numel())})
    return rows


def save_backprop_clone(path: Union[str, Path], cfg: Config, result: CloneTrainResult,
                        results: Dict[str, Dict], eval_seconds: float) -> Path:
    """Save V_M of both clones, the learning curves (tensors) and a JSON record with the config,
    seed, cloning curves, fidelity and the accuracy table."""
    curves = {}
    for key, r in results.items():
        c = r["curves"]
        curves[key] = {"steps": torch.tensor(c["steps"]), "eval_steps": torch.tensor(c["eval_steps"]),
                       **{f"{who}_{what}": c[who][what] for who in ("clone", "sgd")
                          for what in ("train_loss", "test_accuracy")}}
    meta = {
        "kind": KIND, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
        "metrics": {"accuracy": accuracy_table(results, cfg),
                    "final": {k: {"clone_mean": r["curves"]["clone"]["test_accuracy"][:, -1].mean().item(),
                                  "sgd_mean": r["curves"]["sgd"]["test_accuracy"][:, -1].mean().item()}
                              for k, r in results.items()},
                    "fidelity": {k: r["fidelity"] for k, r in results.items()},
                    "train_seconds": round(result.seconds, 1), "eval_seconds": round(eval_seconds, 1),
                    "device": str(get_device(cfg.device))},
        "curves": result.curves,
    }
    tensors = {"lstm": {k: v.cpu() for k, v in result.lstm.state_dict().items()},
               "lstm_random": result.snapshots["local"], "learning_curves": curves}
    return save_artifact(path, tensors, meta)


def train_and_save(cfg: Config, out: Union[str, Path, None] = None, progress: bool = True) -> Path:
    """Clone backprop resumably, evaluate both clones resumably, save the artifact; returns its
    path (default :func:`vsml_lite.artifacts.live_path`). Checkpoints ``<out>.ckpt`` and
    ``<out>.eval.ckpt`` are removed once the artifact is written."""
    out = Path(out) if out is not None else live_path(KIND, cfg.preset)
    ckpt, eval_ckpt = out.with_suffix(".ckpt"), out.with_suffix(".eval.ckpt")
    result = train_backprop_cloning(cfg, checkpoint=ckpt, progress=progress)
    lstms = {"curriculum": result.lstm, "random": load_clone_state(cfg, result.snapshots["local"])}
    device = get_device(cfg.device)
    lstms = {k: v.to(device) for k, v in lstms.items()}
    started = time.perf_counter()
    results = evaluate_clones(cfg, lstms, cache=eval_ckpt, progress=progress)
    path = save_backprop_clone(out, cfg, result, results, time.perf_counter() - started)
    ckpt.unlink(missing_ok=True)
    eval_ckpt.unlink(missing_ok=True)
    return path


def load_clone_state(cfg: Config, state_dict: Dict[str, torch.Tensor]) -> SubLSTM:
    """A :class:`SubLSTM` with the backprop cloning sizes of ``cfg`` holding ``state_dict``."""
    lstm = new_clone_lstm(cfg)
    lstm.load_state_dict(state_dict)
    return lstm


def load_backprop_clone(record) -> Tuple[Config, Dict[str, SubLSTM]]:
    """The config and both clones (``"curriculum"``, ``"random"``) of a loaded artifact."""
    cfg = Config.from_dict(record.meta["config"])
    return cfg, {"curriculum": load_clone_state(cfg, record.tensors["lstm"]),
                 "random": load_clone_state(cfg, record.tensors["lstm_random"])}
