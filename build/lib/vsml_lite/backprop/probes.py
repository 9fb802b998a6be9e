"""How close the clone is to backpropagation: one step beside autograd (fidelity), and how well
it holds its weights when no error arrives. Chapter 3.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ..config import Config
from ..data import NORMALIZATION, TensorData
from ..device import make_generator
from ..network import SubLSTM, cross_entropy_error
from .ground_truth import init_weights, mlp_backprop
from .learner import learning_rate, make_learner


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
