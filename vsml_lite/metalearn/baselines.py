"""The baselines of Figure 6: online backpropagation with Adam, one example per step, on a
linear model and on a one-hidden-layer network, on exactly the meta-test streams of the
learners, with the learning rate chosen on MNIST training streams. Chapter 5.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import nn

from ..config import Config
from ..data import NUM_CLASSES, TensorData
from ..device import make_generator
from .episodes import scores, test_streams

#: Online-Adam baselines: name -> hidden units (0: linear model; None: ``adam_hidden``).
BASELINES = {"adam_linear": 0, "adam_mlp": None}
#: Figure 6's claims are about the first 200 steps: the paper's meta-training episode length.
#: Every preset judges them there (or at ``test_steps`` when that is shorter), whatever its own
#: episode length, and online Adam's learning rate is chosen for the same horizon.
CLAIM_STEPS = 200


def claim_steps(cfg: Config) -> int:
    """The horizon of the claims: :data:`CLAIM_STEPS`, or ``test_steps`` if shorter."""
    return min(CLAIM_STEPS, cfg.meta_learning.test_steps)


def online_backprop(images: torch.Tensor, labels: torch.Tensor, hidden: int, lr: float,
                    seed: int) -> Dict[str, torch.Tensor]:
    """Online backpropagation with Adam, one example per step, on every stream at once.

    Each stream ``s`` has its own network (``hidden = 0``: linear, ``x W + b``; else
    ``tanh(x W1 + b1) W2 + b2``), initialised as ``nn.Linear`` does (U(±1/sqrt(fan_in)))
    from a generator seeded with ``seed``. At step ``t`` it predicts ``images[t]``, then takes
    one Adam step on that example's cross-entropy. Adam acts elementwise, so summing the
    streams' losses updates each stream's network with its own gradient only.

    Args:
        images: ``[T, S, A]``; labels: ``[T, S]``.

    Returns:
        As :func:`meta_test`, plus ``num_parameters`` (one network).
    """
    T, S, A = images.shape
    gen = make_generator(seed)
    sizes = [A, hidden, NUM_CLASSES] if hidden else [A, NUM_CLASSES]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        for shape in ((S, fan_in, fan_out), (S, 1, fan_out)):
            params.append((torch.rand(shape, generator=gen) * 2 * bound - bound).to(images.device).requires_grad_())
    opt = torch.optim.Adam(params, lr=lr)
    logits_all = []
    for t in range(T):
        h = images[t][:, None, :]  # [S, 1, A]
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k + 2 < len(params):
                h = torch.tanh(h)
        logits = h[:, 0]  # [S, C]
        logits_all.append(logits.detach())
        loss = nn.functional.cross_entropy(logits, labels[t], reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = scores(torch.stack(logits_all), labels)
    out["num_parameters"] = sum(p[0].numel() for p in params)
    return out


def choose_learning_rate(cfg: Config, train: TensorData, hidden: int) -> Dict[str, object]:
    """Pick online Adam's learning rate on MNIST *training* streams: the rate in
    ``cfg.meta_learning.adam_lrs`` with the best accuracy over the first :func:`claim_steps`
    steps, averaged over ``lr_search_seeds`` streams. Returns ``{"lr", "scores": {lr: acc}}``."""
    m = cfg.meta_learning
    images, labels = test_streams(train, range(m.lr_search_seeds), claim_steps(cfg))
    scores = {}
    for lr in m.adam_lrs:
        out = online_backprop(images, labels, hidden, lr, seed=cfg.seed)
        scores[lr] = out["accuracy"][-1].mean().item()
    return {"lr": max(scores, key=scores.get), "scores": scores}
