"""Evolution strategies as a meta-optimiser: OpenAI-ES with antithetic sampling (Salimans et
al., 2017), the default meta-optimiser of the paper's official code (``configs/default.yaml``:
``optimizer.type: es``, ``noise_std: 0.05``). Chapter 5 runs it beside gradient descent.

For meta-variables ``θ`` (flattened), noise ``ε_k ~ N(0, I)`` and a loss ``L_k`` per member
``k`` of a population of ``P`` (member ``k`` judges both ``θ ± σ ε_k`` on the same episode),

    g = (1 / P) Σ_k ε_k · (L_k(θ + σ ε_k) - L_k(θ - σ ε_k)) / (2σ),

an estimate of the gradient of ``E_ε[L(θ + σ ε)]``, the loss smoothed by the noise. The
official code's ``_es_grads`` computes the same (its ``es_factor`` times the scaled noise) and
hands it to Adam like a gradient; so does :class:`~vsml_lite.metalearn.MetaTrainingTask`.
No gradient is taken anywhere: every evaluation runs the learner forward only, so memory does
not grow with the episode length.

Under ``torch.distributed`` every process draws the same noise and evaluates only its share of
the members (:func:`vsml_lite.distributed.shard`); the summed estimate equals one process's
(``tests/test_metalearn.py``).
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch

from ..distributed import all_reduce_sum, shard


def antithetic_gradient(loss_of: Callable[[int, torch.Tensor], torch.Tensor], theta: torch.Tensor,
                        noise: torch.Tensor, sigma: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """The OpenAI-ES estimate of the gradient at ``theta``.

    Args:
        loss_of: ``loss_of(k, params)`` is member ``k``'s loss (a scalar tensor) with the
            meta-variables set to ``params`` (same shape as ``theta``).
        theta: ``[D]`` the meta-variables, flattened.
        noise: ``[P, D]`` one standard-normal direction per member (every process the same).
        sigma: the noise scale σ (``> 0``).

    Returns:
        ``(gradient [D], mean loss)``: the estimate summed over processes, and the mean of all
        ``2P`` losses.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if noise.dim() != 2 or noise.shape[1] != theta.numel():
        raise ValueError(f"noise must be [P, {theta.numel()}], got {list(noise.shape)}")
    P = noise.shape[0]
    grad = torch.zeros_like(theta)
    total = torch.zeros((), dtype=theta.dtype, device=theta.device)
    for k in range(P)[shard(P)]:  # this process's members
        eps = noise[k].to(theta)
        plus, minus = loss_of(k, theta + sigma * eps), loss_of(k, theta - sigma * eps)
        grad += eps * ((plus - minus) / (2 * sigma))
        total += (plus + minus) / 2
    both = all_reduce_sum(torch.cat([grad, total[None]]) / P)
    return both[:-1], both[-1]
