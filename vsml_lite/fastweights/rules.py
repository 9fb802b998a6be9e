"""Fast weights and learned learning rules (FWs / LLRs) written out explicitly: Eqs. 9-11.

A single dense layer of ``A`` input and ``B`` output neurons with weights ``w`` of shape
``[..., A, B]`` (leading axes: independent copies, e.g. episodes). One step ``t``:

* forward computation (Eq. 9): ``x_b(t+1) = σ(Σ_a x_a(t) w_ab(t))``;
* the feedback ``R(t)``: in the supervised setting the negative error on the outputs
  (footnote 3), ``R_b = target_b - x_b(t+1)``;
* the learning rule (Eq. 10), the same function for every weight:
  ``Δw_ab = f(x_a(t), x_b(t+1), w_ab(t), R_b(t))``;
* the update (Eq. 11): ``w_ab(t+1) = w_ab(t) + Δw_ab``.

Named rules (:data:`RULES`), with learning rate ``η`` (``eta``):

* ``hebb``: ``Δw = η x_a x_b`` (Hebb's postulate; grows without bound);
* ``oja``: ``Δw = η x_b (x_a - x_b w)`` (Hebb with a decay that keeps ``|w|`` bounded);
* ``delta``: ``Δw = η x_a R_b`` (the delta / Widrow-Hoff rule: for a linear output and squared
  error this is exactly SGD on the layer);
* ``decay``: ``Δw = -η w`` (forgetting only; the one rule here that needs no product of two
  signals, see :mod:`vsml_lite.fastweights.vs_rnn`).

:class:`LearnedRule` is a small parameterised ``f_θ``: an MLP applied to every weight's four
inputs (Eq. 10 with ``θ`` meta-learned, Chapter 2's Section 2.5).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn

Activation = Callable[[torch.Tensor], torch.Tensor]

#: The named learning rules of :func:`rule_update`, in the order the chapter shows them.
RULES = ("hebb", "oja", "delta", "decay")
#: Output non-linearities σ of Eq. 9 by name (``identity`` for the regression task).
ACTIVATIONS: Dict[str, Activation] = {"identity": lambda z: z, "tanh": torch.tanh}

RuleLike = Union[str, Callable[..., torch.Tensor]]


def check_rule(rule: RuleLike) -> None:
    """Raise ``ValueError`` unless ``rule`` is a name in :data:`RULES` or a callable."""
    if isinstance(rule, str) and rule not in RULES:
        raise ValueError(f"unknown learning rule {rule!r}; choose one of {', '.join(RULES)} or pass f_θ")
    if not isinstance(rule, str) and not callable(rule):
        raise TypeError(f"rule must be a rule name or a callable f(x_a, x_b, w, R), got {type(rule).__name__}")


def activation(name: str) -> Activation:
    """The σ of Eq. 9 called ``name`` (:data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def neural_forward(x: torch.Tensor, w: torch.Tensor, sigma: str = "identity") -> torch.Tensor:
    """Eq. 9: ``x_b(t+1) = σ(Σ_a x_a(t) w_ab(t))``.

    Args:
        x: inputs ``[..., A]``. w: weights ``[..., A, B]``. sigma: name of σ.

    Returns:
        ``[..., B]``.
    """
    if x.shape[-1] != w.shape[-2] or x.shape[:-1] != w.shape[:-2]:
        raise ValueError(f"x {list(x.shape)} and w {list(w.shape)} do not fit: need x [..., A], w [..., A, B]")
    return activation(sigma)((x.unsqueeze(-2) @ w).squeeze(-2))  # (Eq. 9)


def rule_update(rule: RuleLike, x_a: torch.Tensor, x_b: torch.Tensor, w: torch.Tensor,
                R: torch.Tensor, eta: float) -> torch.Tensor:
    """Eq. 10: ``Δw_ab = f(x_a(t), x_b(t+1), w_ab(t), R_b(t))`` for every weight at once.

    Args:
        rule: a name in :data:`RULES`, or a callable ``f(x_a, x_b, w, R) -> Δw`` taking the four
            inputs already broadcast to ``[..., A, B]`` (e.g. a :class:`LearnedRule`).
        x_a: presynaptic activity ``[..., A]``. x_b: postsynaptic activity ``[..., B]``.
        w: weights ``[..., A, B]``. R: feedback ``[..., B]`` (negative error).
        eta: learning rate η of the named rules (a learned rule has its own scale).

    Returns:
        ``Δw``, ``[..., A, B]``.
    """
    check_rule(rule)
    pre, post, feedback = x_a.unsqueeze(-1), x_b.unsqueeze(-2), R.unsqueeze(-2)
    if rule == "hebb":
        return eta * pre * post
    if rule == "oja":
        return eta * post * (pre - post * w)
    if rule == "delta":
        return eta * pre * feedback
    if rule == "decay":
        return -eta * w
    shape = w.shape
    return rule(pre.expand(shape), post.expand(shape), w, feedback.expand(shape))


def llr_step(x: torch.Tensor, w: torch.Tensor, target: torch.Tensor, rule: RuleLike, eta: float,
             sigma: str = "identity") -> Tuple[torch.Tensor, torch.Tensor]:
    """One step of a network with a learned learning rule, Eqs. 9-11.

    Args:
        x: the datum ``[..., A]``. w: weights ``[..., A, B]``. target: ``[..., B]`` (the
            feedback is ``R = target - output``; unsupervised rules ignore it).
        rule, eta: see :func:`rule_update`. sigma: σ of Eq. 9.

    Returns:
        ``(output [..., B], w(t+1) [..., A, B])``.
    """
    y = neural_forward(x, w, sigma)                       # (Eq. 9)
    R = target - y                                        # footnote 3: R = -error
    return y, w + rule_update(rule, x, y, w, R, eta)      # (Eqs. 10, 11)


def run_llr(xs: torch.Tensor, targets: torch.Tensor, w0: torch.Tensor, rule: RuleLike, eta: float,
            sigma: str = "identity") -> Tuple[torch.Tensor, torch.Tensor]:
    """Run :func:`llr_step` over a stream.

    Args:
        xs: ``[T, ..., A]``. targets: ``[T, ..., B]``. w0: ``[..., A, B]``.

    Returns:
        ``(outputs [T, ..., B], weights [T + 1, ..., A, B])`` (``weights[0]`` is ``w0``).
    """
    return run_stream(lambda x, target, w: llr_step(x, w, target, rule, eta, sigma), xs, targets, w0)


def run_stream(step: Callable, xs: torch.Tensor, targets: torch.Tensor, start: torch.Tensor):
    """Run ``step(x, target, v) -> (output, v)`` over a stream from ``v = start``; the one loop
    behind :func:`run_llr` and :func:`vsml_lite.fastweights.run_vs`.

    Returns:
        ``(outputs [T, ...], values [T + 1, ...])`` (``values[0]`` is ``start``).
    """
    if xs.shape[0] != targets.shape[0]:
        raise ValueError(f"xs has {xs.shape[0]} steps and targets {targets.shape[0]}; they must match")
    v, ys, vs = start, [], [start]
    for x, target in zip(xs, targets):
        y, v = step(x, target, v)
        ys.append(y)
        vs.append(v)
    return torch.stack(ys), torch.stack(vs)


class LearnedRule(nn.Module):
    """A parameterised learning rule ``f_θ`` (Eq. 10): an MLP from a weight's four inputs
    ``(x_a, x_b, w_ab, R_b)`` to its update ``Δw_ab``, the same ``θ`` for every weight.

    Args:
        hidden: width of its one hidden (tanh) layer.
        generator: seeds ``θ``.

    ``|θ| = 4·hidden + hidden + hidden + 1``, whatever the size of the network it trains.
    """

    def __init__(self, hidden: int = 16, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.inp = nn.Linear(4, hidden)
        self.out = nn.Linear(hidden, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * p.shape[-1] ** -0.5)
            self.out.weight.mul_(0.1)  # start near "no learning": Δw ≈ 0
            self.out.bias.zero_()

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor, w: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        z = torch.stack([x_a, x_b, w, R], dim=-1)
        return self.out(torch.tanh(self.inp(z))).squeeze(-1)
