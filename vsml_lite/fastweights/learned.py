"""Learned learning rules on an online task: the delta rule, a meta-learned ``f_θ`` (Eq. 10) and
a VS Meta RNN meta-learned from random ``V_M`` (Eq. 8), side by side (Chapter 2, Section 2.5).

The task (:func:`regression_episodes`): online linear regression. Each episode draws a hidden
matrix ``W* [A, B]`` (entries ``N(0, 1/A)``) and streams ``x_t ~ N(0, I)`` one per step with
target ``x_t W*``. A learner predicts, then receives its feedback ``R = target - prediction``
(footnote 3) and may update. Its score is the squared error of each prediction, averaged over
episodes (:func:`step_losses`); meta-training (:class:`MetaTraining`, through the package's one
training loop) minimises its mean over the episode by Adam on ``V_M``, differentiating through
every step. Every learner starts an episode knowing nothing: weights (or states) 0.
"""

from __future__ import annotations

from typing import Dict, Union

import torch

from .rules import LearnedRule, run_llr
from .vs_rnn import FEEDBACK_SLOTS, LINEAR_GATES, VSLayer, forward_message, run_vs

Learner = Union[float, LearnedRule, VSLayer]  # a float is the delta rule's η


def regression_episodes(batch: int, steps: int, A: int, B: int, generator: torch.Generator):
    """``(xs [T, batch, A], targets [T, batch, B], W* [batch, A, B])`` for online regression."""
    W_star = torch.randn(batch, A, B, generator=generator) * A ** -0.5
    xs = torch.randn(steps, batch, A, generator=generator)
    return xs, (xs.unsqueeze(-2) @ W_star).squeeze(-2), W_star


def run_learner(learner: Learner, xs: torch.Tensor, targets: torch.Tensor, ticks: int):
    """Run a learner on episodes from zero weights / zero states.

    Returns:
        ``(predictions [T, batch, B], weights)``: ``weights`` are ``[T + 1, batch, A, B]`` for the
        explicit learners and the states ``[T + 1, batch, A, B, N]`` for a :class:`VSLayer`.
    """
    A, B = xs.shape[-1], targets.shape[-1]
    if isinstance(learner, VSLayer):
        s0 = xs.new_zeros(*xs.shape[1:-1], A, B, learner.state_size)
        return run_vs(learner, xs, targets, s0, ticks)
    w0 = xs.new_zeros(*xs.shape[1:-1], A, B)
    if isinstance(learner, LearnedRule):
        return run_llr(xs, targets, w0, learner, eta=1.0)
    return run_llr(xs, targets, w0, "delta", eta=float(learner))


def step_losses(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error of each step's prediction, summed over outputs, averaged over episodes: ``[T]``."""
    return ((predictions - targets) ** 2).sum(-1).mean(-1)


def effective_weights(layer: VSLayer, s: torch.Tensor) -> torch.Tensor:
    """What a VS Meta RNN's state does as a weight: sub-RNN ``(a, b)``'s contribution to the
    output message for input ``x_a = 1`` minus that for ``x_a = 0``, one forward tick from ``s``
    (``[..., A, B, N]`` -> ``[..., A, B]``). For a hand construction (:func:`construct_rule`)
    this is exactly the weight unit ``s_ab0``."""
    A, B = s.shape[-3], s.shape[-2]
    silent = s.new_zeros(*s.shape[:-3], B, len(FEEDBACK_SLOTS))
    ones, zeros = s.new_ones(*s.shape[:-3], A), s.new_zeros(*s.shape[:-3], A)
    on = layer.tick(s, forward_message(ones), silent) @ layer.readout
    off = layer.tick(s, forward_message(zeros), silent) @ layer.readout
    return on - off


class MetaTraining:
    """Meta-train a learner's ``V_M`` (a :class:`LearnedRule` or a :class:`VSLayer`) on fresh
    regression episodes, one batch per iteration; a :class:`vsml_lite.training.Task`."""

    def __init__(self, learner: torch.nn.Module, cfg, name: str, generator: torch.Generator) -> None:
        self.learner, self.cfg, self.name, self.gen = learner, cfg, name, generator
        self.total, self.log_every = cfg.iterations, cfg.log_every
        self.checkpoint_every = cfg.iterations
        self.opt = torch.optim.Adam(learner.parameters(), lr=cfg.lr)

    def step(self, iteration: int) -> Dict[str, torch.Tensor]:
        c = self.cfg
        xs, targets, _ = regression_episodes(c.meta_batch, c.episode_length, c.inputs, c.outputs, self.gen)
        predictions, _ = run_learner(self.learner, xs, targets, c.vs_ticks)
        loss = step_losses(predictions, targets).mean()
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.learner.parameters(), GRAD_CLIP)
        self.opt.step()
        return {"loss": loss.detach()}

    def state_dict(self):
        return {"learner": self.learner.state_dict(), "opt": self.opt.state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, state) -> None:
        self.learner.load_state_dict(state["learner"])
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["gen"])


#: Meta-gradients are clipped to this norm: a long unroll through a random V_M can explode.
GRAD_CLIP = 1.0


def choose_eta(cfg, generator: torch.Generator) -> float:
    """The delta rule's η from ``cfg.eta_grid`` with the lowest mean loss on meta-training
    episodes (the hand-designed rule gets its one number tuned, like the learned ones)."""
    xs, targets, _ = regression_episodes(cfg.meta_batch * 4, cfg.episode_length, cfg.inputs, cfg.outputs, generator)
    losses = {eta: step_losses(run_learner(eta, xs, targets, cfg.vs_ticks)[0], targets).mean().item()
              for eta in cfg.eta_grid}
    return min(losses, key=losses.get)


def compare_learners(cfg, seed: int = 0, progress: bool = True) -> Dict[str, object]:
    """Meta-train ``f_θ`` and a VS Meta RNN, tune the delta rule, and test all three on the same
    fresh episodes. ``cfg`` is a :class:`~vsml_lite.config.FastWeightsConfig`.

    Returns:
        ``{"rows": [...], "curves": {name: [T] test loss per step}, "histories": {name:
        meta-training history}, "weights": {name: [T + 1] one weight of test episode 0},
        "target": W*_00 of that episode, "eta": the delta rule's η, "learners": {name: model}}``.
    """
    from ..training import run

    gen = torch.Generator().manual_seed(seed)
    rule = LearnedRule(cfg.rule_hidden, generator=gen)
    vs = VSLayer(cfg.vs_state, kind="gated", gates=cfg.vs_gates, init_std=cfg.vs_init_std, generator=gen)
    histories = {}
    for name, learner in (("learned rule f_θ", rule), ("VS Meta RNN", vs)):
        histories[name] = run(MetaTraining(learner, cfg, name, gen), progress=progress).history
    eta = choose_eta(cfg, gen)
    test_gen = torch.Generator().manual_seed(seed + TEST_SEED_OFFSET)
    xs, targets, W_star = regression_episodes(cfg.test_episodes, cfg.episode_length, cfg.inputs, cfg.outputs, test_gen)
    learners = {f"delta rule (η = {eta:g})": eta, "learned rule f_θ": rule, "VS Meta RNN": vs}
    rows, curves, weights = [], {}, {}
    T = cfg.episode_length
    with torch.no_grad():
        for name, learner in learners.items():
            predictions, trace = run_learner(learner, xs, targets, cfg.vs_ticks)
            curve = step_losses(predictions, targets)
            curves[name] = curve.tolist()
            if isinstance(learner, VSLayer):
                weights[name] = effective_weights(learner, trace[:, 0])[:, 0, 0].tolist()
                meta, learned = learner.meta_variables(), cfg.inputs * cfg.outputs * learner.state_size
            else:
                weights[name] = trace[:, 0, 0, 0].tolist()
                meta = 1 if not isinstance(learner, LearnedRule) else sum(p.numel() for p in learner.parameters())
                learned = cfg.inputs * cfg.outputs
            rows.append({"learner": name, "|V_M|": meta, "|V_L|": learned,
                         "loss, steps 1-5": curve[:5].mean().item(),
                         f"loss, steps {T - 4}-{T}": curve[-5:].mean().item(),
                         MEAN_LOSS: curve.mean().item()})
    return {"rows": rows, "curves": curves, "histories": histories, "weights": weights,
            "target": W_star[0, 0, 0].item(), "eta": eta, "learners": learners}


#: Column of :func:`compare_learners`' rows with the loss averaged over the episode, the meta-objective.
MEAN_LOSS = "loss, mean over the episode"
#: Test episodes are drawn from seed + this, apart from every meta-training episode.
TEST_SEED_OFFSET = 1000


def imitate_rule(kind: str, rule: str, cfg, generator: torch.Generator) -> Dict[str, float]:
    """Train a VS Meta RNN layer of ``kind`` (``"additive"``: Eq. 14 with tanh; ``"linear"``:
    Eq. 14 with no σ; ``"gated"``: Eq. 6 with affine gates) from random ``V_M`` to carry out one
    step of the named ``rule`` (:data:`TICKS_NEEDED` ticks, at least 2, weight in unit 0), by
    Adam on random ``(x, w, target)``; report how far it gets on fresh ones.

    The same size (``N = 5``, the hand construction's) and ticks for every kind: what differs
    is only whether a tick can multiply two signals (Eqs. 5/6).

    Returns:
        ``{"kind", "rule", "update_error"}``: the RMS error of the weight update ``Δw`` relative
        to the RMS of the true ``Δw`` (0: exact; 1: no better than leaving ``w`` alone).
    """
    from .rules import llr_step
    from .vs_rnn import TICKS_NEEDED, UNIT_NAMES, WEIGHT_UNIT, initial_state, vs_step

    ticks = max(2, TICKS_NEEDED[rule])
    layer_kind = "gated" if kind == "gated" else "additive"
    sigma = "identity" if kind == "linear" else "tanh"
    layer = VSLayer(len(UNIT_NAMES), kind=layer_kind, gates=LINEAR_GATES, sigma=sigma,
                    init_std=IMITATION_INIT_STD, generator=generator)
    opt = torch.optim.Adam(layer.parameters(), lr=cfg.imitation_lr)
    A = B = cfg.imitation_side

    def batch(n):
        x = torch.randn(n, A, generator=generator)
        w = torch.randn(n, A, B, generator=generator) * IMITATION_WEIGHT_STD
        target = torch.randn(n, B, generator=generator)
        y, w_next = llr_step(x, w, target, rule, cfg.equality_eta)
        return x, w, target, y, w_next - w

    def attempt(x, w, target):
        y, s = vs_step(layer, initial_state(w, layer.state_size), x, target, ticks)
        return y, s[..., WEIGHT_UNIT] - w

    for _ in range(cfg.imitation_iterations):
        x, w, target, y, dw = batch(cfg.imitation_batch)
        y_vs, dw_vs = attempt(x, w, target)
        scale = dw.pow(2).mean().clamp_min(1e-12)
        loss = (dw_vs - dw).pow(2).mean() / scale + (y_vs - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(layer.parameters(), GRAD_CLIP)
        opt.step()
    with torch.no_grad():
        x, w, target, y, dw = batch(IMITATION_TEST_BATCH)
        _, dw_vs = attempt(x, w, target)
        error = ((dw_vs - dw).pow(2).mean() / dw.pow(2).mean()).sqrt().item()
    return {"kind": kind, "rule": rule, "update_error": error}


#: Kinds of tick compared by :func:`imitate_rule`, in table order.
IMITATION_KINDS = ("linear", "additive", "gated")
#: Random V_M scale for :func:`imitate_rule` (small: affine gates multiply, so a tick can explode).
IMITATION_INIT_STD = 0.3
#: Weights drawn for :func:`imitate_rule`: std 0.5 keeps them inside tanh's near-linear range.
IMITATION_WEIGHT_STD = 0.5
#: A relative update error below this counts as "learned the rule" in the chapter's text.
LEARNED_BELOW = 0.25
#: Fresh samples :func:`imitate_rule` scores on.
IMITATION_TEST_BATCH = 4096
