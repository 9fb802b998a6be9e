"""The ground truth of Chapter 4: the tanh network that cloned backpropagation imitates, and
its backpropagation by autograd and by the hand-derived formulas (Section 3.2, Eq. 14).

Layer ``l`` maps its input ``x [G, n, A]`` to ``y_b = Σ_a tanh(x_a) · w_ab + b_ab``: one
``tanh(x) · w + b`` per connection (Eq. 13, with a bias per connection), summed over the grid,
exactly what a dense VSML layer of cloned sub-LSTMs computes with ``reduce="sum"``.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from ..network import cross_entropy_error

Weights = List[Tuple[torch.Tensor, torch.Tensor]]  # per layer: w [G, A, B], b [G, A, B]


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


def formula_sgd_step(weights: Weights, x: torch.Tensor, labels: torch.Tensor, lr: float) -> Weights:
    """:func:`mlp_sgd_step`'s new weights by Eq. 14's formulas (:func:`errors_and_grads` of the
    output error ``softmax - onehot``) instead of autograd (the test
    ``test_sgd_step_by_formulas_equals_autograd`` holds them equal). Eagerly it costs about what
    autograd does; it exists because ``torch.autograd.grad`` stops ``torch.compile``, and on a GPU
    the curriculum's warm-up runs up to ``warmup_max`` of these steps per iteration, each a few
    dozen kernels when eager."""
    inputs, logits = mlp_forward(weights, x)
    _, grads = errors_and_grads(weights, inputs, cross_entropy_error(logits, labels))
    return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(weights, grads)]


def errors_and_grads(weights: Weights, inputs: List[torch.Tensor], out_err: torch.Tensor):
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
