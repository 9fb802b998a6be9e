"""How close the clone is to backpropagation: one step beside autograd (fidelity), and how well
it holds its weights when no error arrives. Chapter 4.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ..config import Config
from ..data import NORMALIZATION, TensorData
from ..device import make_generator
from ..network import SubLSTM, average_learner_batch, cross_entropy_error
from .ground_truth import init_weights, mlp_backprop, mlp_sgd_step
from .learner import learning_rate, make_learner, read_weights, state_from_weights


def cosine(a: torch.Tensor, b: torch.Tensor, centred: bool = False) -> float:
    """Cosine of ``a`` and ``b`` (same shape) read as flat vectors: the fidelity measure of
    Chapter 4's tables and of the probes in ``probes/``.

    ``centred=True`` first removes each row's mean over the last axis: for logits, a shift that
    the softmax ignores, so the centred cosine says whether the clone's outputs agree up to it.
    """
    if a.shape != b.shape:
        raise ValueError(f"cosine: shapes differ, {tuple(a.shape)} against {tuple(b.shape)}")
    if centred:
        a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
    return nn.functional.cosine_similarity(a.reshape(1, -1), b.reshape(1, -1)).item()


def _rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


#: The quantities compared with autograd, in the order of the chapter's tables: what the
#: forward phase outputs, what the backward phase sends down, and the change of the weights
#: and of the biases the state holds. The weight and bias parts are kept apart: the biases'
#: updates are most of the update vector's norm, and a combined number can look good while
#: the weights barely follow backpropagation.
PARTS = {"forward outputs": "forward", "errors sent down": "backward", "weight updates": "weight",
         "bias updates": "bias"}


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
        ``{part: (clone, autograd)}`` for every part of :data:`PARTS`, flat tensors: the
        logits, the errors every layer sends down, the change of every weight ``w_ab`` and
        the change of every bias ``b_ab`` (read from the state after averaging over the
        copies; autograd's is ``-η · gradient``).
    """
    gen = make_generator(seed)
    device = next(lstm.parameters()).device
    learner = make_learner(lstm, cfg, layer_sizes)
    G, n, scale = learners, copies, cfg.backprop_cloning.state_scale
    state = state_from_weights(learner, init_weights(layer_sizes, G, gen, device), n, scale)

    def batch():
        idx = torch.randint(len(data), (G, n), generator=gen)
        return data.images[idx].to(device), data.labels[idx].to(device)

    for _ in range(warmup):
        x, labels = batch()
        state, _ = learner.learn_step(state, x.reshape(G * n, -1), labels.reshape(-1), G)
    x, labels = batch()
    weights = read_weights(state, G, scale)
    _, logits_gt, errs_gt, grads = mlp_backprop(weights, x, labels)
    state, inputs, y = learner.forward_phase(state, x.reshape(G * n, -1))
    state, errs = learner.backward_phase(state, inputs, cross_entropy_error(y, labels.reshape(-1)))
    after = read_weights(average_learner_batch(state, G), G, scale)
    lr = learning_rate(cfg)
    return {"forward outputs": (_flat([y]), _flat([logits_gt])),
            "errors sent down": (_flat(errs), _flat(errs_gt)),
            "weight updates": (_flat([a[0] - w[0] for a, w in zip(after, weights)]), _flat([-lr * g[0] for g in grads])),
            "bias updates": (_flat([a[1] - w[1] for a, w in zip(after, weights)]), _flat([-lr * g[1] for g in grads]))}


def _flat(ts) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in ts]).cpu()


def seen_biases(biases: Sequence[torch.Tensor]) -> torch.Tensor:
    """The part of the per-connection biases that the network's output depends on.

    Eq. 13's output neuron ``b`` sums ``tanh(x_a) w_ab + b_ab`` over the grid, so it sees only
    ``Σ_a b_ab``: any change that spreads over one neuron's connections and sums to zero is
    invisible to it. The softmax ignores a shift common to all classes, so of the last layer's
    sums only their differences count. Exact backpropagation changes every ``b_ab`` of one
    neuron alike, so everything it changes is seen.

    Args:
        biases: per layer ``[G, A, B]`` (or changes of them); the last layer is the logits'.

    Returns:
        flat ``[G·(B_0 + ... + B_last)]``: each layer's ``Σ_a b_ab`` ``[G, B]``, the last
        centred over its ``B`` classes. Linear, so the seen part of a change is the change of
        the seen part.
    """
    sums = [b.sum(dim=1) for b in biases]  # [G, B] each
    sums[-1] = sums[-1] - sums[-1].mean(dim=-1, keepdim=True)
    return _flat(sums)


@torch.no_grad()
def accumulated_comparison(lstm: SubLSTM, cfg: Config, data: TensorData, layer_sizes: Sequence[int],
                           steps: int = 300, learners: int = 4, copies: int = 16,
                           seed: int = 0) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """The clone and autograd-SGD learn side by side for ``steps`` steps, from the same fresh
    weights and on the same batches of ``data``; what each has changed by the end.

    One step can look right and still drift: a small error repeated every step (a weight that
    creeps, a bias that grows) adds up. Returns ``{"weight change": (clone, sgd),
    "bias change": (clone, sgd), "seen bias change": (clone, sgd)}``: the total change of
    every weight and bias (flat; the clone's read from its state, averaged over the copies),
    and of the biases' part the network's output depends on (:func:`seen_biases`)."""
    gen = make_generator(seed)
    device = next(lstm.parameters()).device
    learner = make_learner(lstm, cfg, layer_sizes)
    G, n, scale = learners, copies, cfg.backprop_cloning.state_scale
    start = init_weights(layer_sizes, G, gen, device)
    state, sgd = state_from_weights(learner, start, n, scale), start
    for _ in range(steps):
        idx = torch.randint(len(data), (G, n), generator=gen)
        x, labels = data.images[idx].to(device), data.labels[idx].to(device)
        state, _ = learner.learn_step(state, x.reshape(G * n, -1), labels.reshape(-1), G)
        sgd, _ = mlp_sgd_step(sgd, x, labels, learning_rate(cfg))
    held = read_weights(state, G, scale)
    out = {f"{part} change": (_flat([h[k] - s[k] for h, s in zip(held, start)]),
                              _flat([w[k] - s[k] for w, s in zip(sgd, start)]))
           for k, part in ((0, "weight"), (1, "bias"))}
    out["seen bias change"] = (seen_biases([h[1] - s[1] for h, s in zip(held, start)]),
                               seen_biases([w[1] - s[1] for w, s in zip(sgd, start)]))
    return out


def fidelity(lstm: SubLSTM, cfg: Config, data: TensorData, layer_sizes: Sequence[int],
             accumulate: int = 0, **kw) -> Dict[str, float]:
    """How close the clone is to backpropagation, part by part (:data:`PARTS`).

    For one step (:func:`one_step_comparison`, same keyword arguments): ``<part>_cosine`` and
    ``<part>_rel_error`` (``|clone - autograd| / |autograd|``) for ``forward``, ``backward``,
    ``weight`` and ``bias``, and ``update_*`` for weights and biases together (what earlier
    records call the weight update). Exact backpropagation gives cosine 1 and relative error 0.

    With ``accumulate = T > 0`` also the total change over ``T`` steps of learning beside SGD
    (:func:`accumulated_comparison`): ``weight_total_cosine``, ``weight_total_ratio``
    (``|clone's change| / |SGD's change|``) and the same for ``bias`` and ``seen_bias``.
    """
    pairs = one_step_comparison(lstm, cfg, data, layer_sizes, **kw)
    pairs["all updates"] = tuple(torch.cat([pairs["weight updates"][i], pairs["bias updates"][i]]) for i in (0, 1))
    out = {}
    for name, key in (*PARTS.items(), ("all updates", "update")):
        c, t = pairs[name]
        out[f"{key}_cosine"], out[f"{key}_rel_error"] = cosine(c, t), _rel_error(c, t)
    if accumulate:
        kept = {k: v for k, v in kw.items() if k in ("learners", "copies", "seed")}
        out.update(accumulated_fidelity(lstm, cfg, data, layer_sizes, accumulate, **kept))
    return out


def accumulated_fidelity(lstm: SubLSTM, cfg: Config, data: TensorData, layer_sizes: Sequence[int],
                         steps: int = 300, **kw) -> Dict[str, float]:
    """:func:`accumulated_comparison` (same arguments) in numbers: ``weight_total_cosine``,
    ``weight_total_ratio`` (``|clone's change| / |SGD's change|``) and the same for ``bias``
    and ``seen_bias`` (:func:`seen_biases`). Exact backpropagation gives cosine 1 and ratio 1."""
    out = {}
    for name, (c, t) in accumulated_comparison(lstm, cfg, data, layer_sizes, steps, **kw).items():
        key = name.removesuffix(" change").replace(" ", "_")
        out[f"{key}_total_cosine"] = cosine(c, t)
        out[f"{key}_total_ratio"] = (c.norm() / t.norm().clamp_min(1e-12)).item()
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
    G, scale = w0.shape[0], cfg.backprop_cloning.state_scale
    state = state_from_weights(learner, [(w0, torch.zeros_like(w0))], copies, scale)
    gen = make_generator(seed)
    N = w0.shape[0] * copies
    at, ratios, biases = [], [], []
    for t in range(1, steps + 1):
        if input_value is None:
            x = (torch.randn(N, 1, generator=gen) * cfg.data.random_std).to(device)
        else:
            x = torch.full((N, 1), float(input_value), device=device)
        state, inputs, _ = learner.forward_phase(state, x)
        state, _ = learner.backward_phase(state, inputs, x.new_zeros(N, 1))
        state = average_learner_batch(state, G)
        if t % every == 0 or t == steps:
            at.append(t)
            (w, b), = read_weights(state, G, scale)
            ratios.append((w[:, 0, 0] / w0[:, 0, 0]).cpu())
            biases.append(b[:, 0, 0].cpu())
    return {"steps": torch.tensor(at), "ratio": torch.stack(ratios), "bias": torch.stack(biases),
            "weights": w0[:, 0, 0].cpu()}


@torch.no_grad()
def update_response(lstm: SubLSTM, cfg: Config, xs: Sequence[float], errors: Sequence[float] = (-0.5, -0.1, 0.1, 0.5),
                    weight: float = 0.3) -> Dict[str, torch.Tensor]:
    """What one connection writes into its weight and bias in one learner step, alone (one
    copy, no averaging): for every input ``x`` in ``xs`` and error ``e`` in ``errors``, from
    weight ``weight`` and bias 0, a forward phase and a backward phase with error ``e``.

    Backpropagation changes the weight by ``-η · e · tanh(x)`` and the bias by ``-η · e``, so
    in units of ``-η · e`` the weight's response is ``tanh(x)`` for every ``e`` (the product
    of the error and the input that the gates must form), and the bias's is 1.

    Returns:
        ``x [X]``, ``errors [E]``, ``target [X]`` (``tanh x``), ``weight [E, X]`` and
        ``bias [E, X]``: the changes in units of ``-η · e``.
    """
    device = next(lstm.parameters()).device
    net = make_learner(lstm, cfg, [1, 1])
    scale, eta = cfg.backprop_cloning.state_scale, learning_rate(cfg)
    x = torch.tensor(list(xs), dtype=torch.float32)
    es = torch.tensor(list(errors), dtype=torch.float32)
    if (es == 0).any():
        raise ValueError("errors must be non-zero: the response is measured in units of -η·e")
    E, X = len(es), len(x)
    xx, ee = x.repeat(E).to(device), es.repeat_interleave(X).to(device)  # [E·X]
    w0 = torch.full((E * X, 1, 1), float(weight), device=device)
    state = state_from_weights(net, [(w0, torch.zeros_like(w0))], 1, scale)
    state, inputs, _ = net.forward_phase(state, xx[:, None])
    state, _ = net.backward_phase(state, inputs, ee[:, None])
    (w, b), = read_weights(state, E * X, scale)
    unit = (-eta * ee).cpu()
    return {"x": x, "errors": es, "target": torch.tanh(x),
            "weight": ((w[:, 0, 0].cpu() - weight) / unit).reshape(E, X),
            "bias": (b[:, 0, 0].cpu() / unit).reshape(E, X)}


def background_value(dataset: str) -> float:
    """The standardised value of a blank pixel (raw 0) of ``dataset``: what every MNIST image
    shows in most of its pixels, so a connection from such a pixel sees one constant input."""
    if dataset not in NORMALIZATION:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(NORMALIZATION)}")
    mean, std = NORMALIZATION[dataset]
    return -mean / std
