"""Cloning backpropagation: the four stages of Appendix B's curriculum and the run that goes
through them (Section 3.2, Eq. 14, Table 1). Chapter 4.

1. ``local``: single sub-LSTMs on random data (Table 1: inputs ~ N(0, 2²)), random weights and
   random incoming errors;
2. ``shallow``: a one-layer learner on MNIST, matched in its outputs, backward errors and
   weights against autograd;
3. ``deep_gt``: a two-layer learner on MNIST whose hidden layer receives the ground-truth
   backward errors;
4. ``deep_own``: the same with the learner's own backward errors.

Each stage gets a fresh Adam with cosine decay; the run goes through
:func:`vsml_lite.training.run` (:class:`BackpropCloningTask`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from .. import compiled, training
from ..config import Config
from ..data import NUM_CLASSES, TensorData, downsample_dataset, load_dataset
from ..device import get_device, make_generator, to_device
from ..layer import LayerState
from ..network import SubLSTM, VSMLNetwork, average_learner_batch, cross_entropy_error
from .ground_truth import Weights, errors_and_grads, formula_sgd_step, init_weights, mlp_forward
from .learner import CLONE_LAYOUT, learning_rate, make_learner, new_clone_lstm, read_weights, state_from_weights

#: Curriculum stages of Appendix B, in order.
STAGES = ("local", "shallow", "deep_gt", "deep_own")


def _smooth_l1(a, b):
    return nn.functional.smooth_l1_loss(a, b)


def rollout_losses(learner: VSMLNetwork, weights: Weights, batches, lr: float, value_unit: float,
                   state_scale: float, update_unit: float = 1.0, errors_from: str = "labels",
                   given_errors: bool = False, state: Optional[List[LayerState]] = None,
                   part_weights=(1.0, 1.0)):
    """Run the learner and SGD side by side for a few steps and measure how far the learner is
    from backpropagation (SGD's gradients by the formulas the clone imitates,
    :func:`errors_and_grads`, which equal autograd's).

    Args:
        learner: the learner under training (:func:`make_learner`; gradients flow into
            ``learner.lstm``).
        weights: starting weights ``[G, A, B]`` per layer, shared by learner and ground truth.
        batches: a list of ``(x [G, n, A_0], target)``; ``target`` is ``labels [G, n]`` when
            ``errors_from == "labels"``, else the output errors ``[G, n, B_last]`` themselves
            (stage ``local``'s random errors).
        lr: η, the learning rate of the cloned SGD (:func:`learning_rate`).
        value_unit: forward outputs and backward errors are compared in this unit.
        state_scale: the state holds the weights divided by this (:func:`state_from_weights`).
        update_unit: weights are compared in units of ``update_unit · lr``.
        given_errors: feed the lower layers the ground-truth backward errors (``deep_gt``).
        state: the learner's state to start from (it must hold ``weights``); default
            :func:`state_from_weights`.
        part_weights: weights of the weights' and the biases' parts of the update loss.

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
        state = state_from_weights(learner, weights, n, state_scale)
    loss = {"forward": 0.0, "backward": 0.0, "update": 0.0}
    for x, target in batches:
        # The ground truth by Eq. 14's formulas, not by autograd: they are equal (the test
        # `test_formulas_the_clone_learns_equal_autograd`), and a call of torch.autograd.grad
        # would split a compiled rollout into one graph per step (see vsml_lite/compiled.py).
        inputs_gt, logits_gt = mlp_forward(weights, x)
        if errors_from == "labels":  # softmax - onehot: the gradient of the cross-entropy
            out_err = cross_entropy_error(logits_gt.reshape(G * n, -1), target.reshape(-1))
        else:  # random output errors: the gradient of Σ e·y, the same formulas
            out_err = target.reshape(G * n, -1)
        errs_gt, grads = errors_and_grads(weights, inputs_gt, out_err.reshape(G, n, -1))
        outputs_gt = inputs_gt[1:] + [logits_gt]
        state, inputs, y = learner.forward_phase(state, x.reshape(G * n, -1))
        outs = inputs[1:] + [y]
        loss["forward"] = loss["forward"] + sum(
            _smooth_l1(o / value_unit, t.reshape(G * n, -1) / value_unit) for o, t in zip(outs, outputs_gt)) / len(outs)
        given = [e.reshape(G * n, -1) for e in errs_gt] if given_errors else None
        state, errs = learner.backward_phase(state, inputs, out_err, given)
        loss["backward"] = loss["backward"] + sum(
            _smooth_l1(e / value_unit, t.reshape(G * n, -1) / value_unit) for e, t in zip(errs, errs_gt)) / len(errs)
        state = average_learner_batch(state, G)
        weights = [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(weights, grads)]
        loss["update"] = loss["update"] + _weight_loss(read_weights(state, G, state_scale), weights,
                                                       update_unit * lr, part_weights)
    k = len(batches)
    return {"forward": loss["forward"] / k, "backward": loss["backward"] / k, "update": loss["update"] / k}, state


def _weight_loss(read: Weights, target: Weights, scale: float, part_weights=(1.0, 1.0)) -> torch.Tensor:
    """Smooth L1 between the weights and biases read from the state and the ground truth's, in
    units of ``scale``; ``part_weights`` weighs the weights' and the biases' parts."""
    pw, pb = part_weights
    return sum(pw * _smooth_l1(rw / scale, tw / scale) + pb * _smooth_l1(rb / scale, tb / scale)
               for (rw, rb), (tw, tb) in zip(read, target)) / ((pw + pb) * len(read))


def stage_sizes(cfg: Config, stage: str) -> List[int]:
    """Layer sizes of a curriculum stage's learner."""
    p = cfg.backprop_cloning
    A = p.input_side ** 2
    return {"local": [1, 1], "shallow": [A, NUM_CLASSES],
            "deep_gt": [A, p.deep_hidden, NUM_CLASSES], "deep_own": [A, p.deep_hidden, NUM_CLASSES]}[stage]


def stage_groups(cfg: Config, stage: str) -> int:
    """Independent learners per Adam step of a stage: ``local_batch / local_copies`` in stage
    ``local``, ``net_groups`` in the network stages."""
    p = cfg.backprop_cloning
    return p.local_batch // p.local_copies if stage == "local" else p.net_groups


def sample_stage(cfg: Config, stage: str, data: Optional[TensorData], gen: torch.Generator, device,
                 fresh: bool = True, sgd_step: Callable[..., Weights] = formula_sgd_step):
    """One training example of a stage: ``(weights, batches, errors_from, given_errors)``.

    ``local``: ``local_batch`` sub-LSTMs in groups of ``local_copies`` that share
    ``w, b ~ U(-r, r)`` and average their states after every step (a learner batch on a single
    connection), inputs ``~ N(0, std²)`` (Table 1) and output errors ``~ U(-r_e, r_e)``. Network stages:
    ``net_groups`` learners of ``net_learner_batch`` copies on MNIST batches, starting from
    weights after a random number of plain SGD steps (see ``warmup_max``). With ``fresh=False``
    a network stage draws no fresh weights (``weights`` is ``None``): when no learner of the
    pool is replaced this step (:func:`_draw_resets`), the warm-up's SGD steps, most of an
    iteration's kernels on a GPU, would be thrown away. ``sgd_step`` runs one warm-up step
    (:func:`formula_sgd_step`, or a compiled one: :class:`BackpropCloningTask`)."""
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
            batches.append((to_device(x, device), to_device(e, device)))
        return [(to_device(w, device), to_device(b, device))], batches, "errors", False
    if data is None:
        raise ValueError(f"stage {stage!r} needs the MNIST training split")
    G, n = p.net_groups, p.net_learner_batch

    def pick(idx):  # indices from the CPU generator; the images wherever the data lives
        idx = to_device(idx, data.images.device)
        return to_device(data.images[idx], device), to_device(data.labels[idx], device)

    weights = None
    if fresh:
        weights = init_weights(sizes, G, gen, device)
        warm = int(torch.randint(p.warmup_max + 1, (), generator=gen))
        # All warm-up batches in one draw (the same numbers as `warm` draws of [G, n]) and one copy.
        images, labels = pick(torch.randint(len(data), (warm, G, n), generator=gen))
        for k in range(warm):  # plain SGD from the fresh weights: realistic weights to start from
            weights = sgd_step(weights, images[k], labels[k], learning_rate(cfg))
    batches = [pick(torch.randint(len(data), (G, n), generator=gen)) for _ in range(p.rollout)]
    return weights, batches, "labels", stage == "deep_gt"


def _draw_resets(pool: Dict[str, object], groups: int, horizon: int, gen: torch.Generator) -> Optional[torch.Tensor]:
    """Which learners of the pool a fresh one replaces this step: ``[groups]`` booleans, each
    true with probability ``1 / horizon``; ``None`` when the pool is empty (a stage's first
    step: every learner is fresh)."""
    if not pool:
        return None
    return torch.rand(groups, generator=gen) < 1.0 / horizon


def _refresh_pool(pool: Dict[str, object], learner: VSMLNetwork, fresh: Optional[Weights],
                  reset: Optional[torch.Tensor], copies: int, state_scale: float):
    """Every stage keeps its learners from one Adam step to the next, so the clone is also
    trained on the states it reaches itself after many learner steps, not only on states
    fresh from :func:`state_from_weights`. Each step, the learners that ``reset`` marks
    (:func:`_draw_resets`) are replaced by fresh ones (weights ``fresh``; ``None`` when none
    is replaced). The ground truth restarts every Adam step from the weights the state holds,
    so an old deviation is not charged again. Returns the ``(weights, state)`` to start from."""
    n = copies  # copies per learner, as in the stage's batches
    if reset is None:
        return fresh, state_from_weights(learner, fresh, n, state_scale)
    if fresh is None:  # every learner continues
        fresh = pool["weights"]
    fresh_state = state_from_weights(learner, fresh, n, state_scale)
    reset = to_device(reset, fresh[0][0].device)
    weights = [(torch.where(reset[:, None, None], fw, pw), torch.where(reset[:, None, None], fb, pb))
               for (fw, fb), (pw, pb) in zip(fresh, pool["weights"])]
    r = reset.repeat_interleave(n)[:, None, None, None]
    state = [LayerState(torch.where(r, f.h, ph), torch.where(r, f.c, pc), f.fwd_in, f.bwd_in)
             for f, (ph, pc) in zip(fresh_state, pool["state"])]
    return weights, state


def forward_clone_state(cfg: Config, preset: str) -> Dict[str, torch.Tensor]:
    """V_M of Chapter 3's shipped forward clone at ``preset`` scale, to start cloning
    backpropagation from (``backprop_cloning.init_forward_clone``). Both chapters run the same
    sub-LSTM with the same message slots; the sizes must match."""
    from ..artifacts import load_artifact, pretrained_path
    from ..cloning import KIND, load_forward_clone

    path = pretrained_path(KIND, preset)
    if not path.with_suffix(".pt").exists():
        raise FileNotFoundError(f"backprop_cloning.init_forward_clone={preset!r}: no forward clone at {path}.pt "
                                f"(train it with scripts/train_forward_cloning.py --preset {preset})")
    lstm = load_forward_clone(load_artifact(path))
    p = cfg.backprop_cloning
    if (lstm.hidden_size, lstm.msg_size) != (p.hidden_size, p.msg_size):
        raise ValueError(f"backprop_cloning.init_forward_clone={preset!r}: the forward clone has cell size "
                         f"{lstm.hidden_size} and message size {lstm.msg_size}, backprop cloning "
                         f"{p.hidden_size} and {p.msg_size}")
    return lstm.state_dict()


def stage_schedule(cfg: Config) -> List[Tuple[str, int]]:
    """``[(stage, iterations), ...]`` in curriculum order, stages with 0 iterations left out."""
    p = cfg.backprop_cloning
    its = {"local": p.local_iterations, "shallow": p.shallow_iterations,
           "deep_gt": p.deep_gt_iterations, "deep_own": p.deep_own_iterations}
    return [(s, its[s]) for s in STAGES if its[s] > 0]


def iteration_work(cfg: Config, stage: str) -> int:
    """Sub-LSTM steps in one Adam step of ``stage``: the sub-LSTMs of all its learners' copies
    times the learner steps of a rollout. Every sub-LSTM runs the same ticks per step, so this
    is what an iteration costs, up to overheads, and what the campaign weighs the stages by
    when it estimates the time left (stage ``local`` at Table 1's budget: 32,768 × 4; stage
    ``deep_own``: 64 copies of 784 × 32 + 32 × 10 sub-LSTMs × 4, 50 times as many)."""
    p = cfg.backprop_cloning
    if stage == "local":
        subs = p.local_batch  # learners of [1, 1]: one sub-LSTM per copy
    else:
        sizes = stage_sizes(cfg, stage)
        subs = p.net_groups * p.net_learner_batch * sum(a * b for a, b in zip(sizes, sizes[1:]))
    return subs * p.rollout


#: The case of ``scripts/benchmark_gpu.py`` that times an iteration of each stage (its
#: ``backprop_deep`` runs stage ``deep_own``; ``deep_gt`` runs the same network).
STAGE_CASES = {"local": "backprop_local", "shallow": "backprop_shallow", "deep_gt": "backprop_deep",
               "deep_own": "backprop_deep"}


def stage_costs(cfg: Config, benchmark_ms: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """What an iteration of each stage costs, in one unit for all stages: the benchmark's ms
    per iteration (``benchmark_ms``: ms by case, on one device) for a stage it timed; for
    another, its sub-LSTM steps (:func:`iteration_work`) at the ms per sub-LSTM step of the
    most expensive network stage timed (of ``local`` only if no network stage was timed: on a
    GPU ``local``'s one batch of 32,768 sub-LSTMs costs far less per step than a network's);
    the sub-LSTM steps alone when nothing was timed."""
    work = {s: float(iteration_work(cfg, s)) for s in STAGES}
    timed = {s: benchmark_ms[c] for s, c in STAGE_CASES.items() if benchmark_ms and c in benchmark_ms}
    if not timed:
        return work
    ref = max([s for s in timed if s != "local"] or timed, key=work.get)
    return {s: timed.get(s, work[s] * timed[ref] / work[ref]) for s in STAGES}


def work_done(cfg: Config, iterations: int, benchmark_ms: Optional[Dict[str, float]] = None) -> float:
    """The cost (:func:`stage_costs`) of the curriculum's first ``iterations`` Adam steps."""
    cost, work = stage_costs(cfg, benchmark_ms), 0.0
    for stage, its in stage_schedule(cfg):
        work += min(max(iterations, 0), its) * cost[stage]
        iterations -= its
    return work


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
    #: whether all iterations ran (``False`` when a deadline stopped the run, checkpointed)
    finished: bool = True
    #: the code versions that ran it (a run resumed across sessions may have several)
    code_versions: List[str] = field(default_factory=list)


class BackpropCloningTask:
    """The curriculum as a :class:`~vsml_lite.training.Task`: iteration ``i`` belongs to the
    stage whose span of :func:`stage_schedule` holds it. Each iteration samples the stage's
    learners (:func:`sample_stage`), continues the pool's (:func:`_refresh_pool`), measures
    them against autograd (:func:`rollout_losses`) and takes one Adam step on V_M.

    A stage starts with a fresh Adam (the stages' losses differ in scale), cosine-decayed to 0
    over the stage (the clone must be precise, not just close), and a fresh pool of learners.
    """

    name = "backprop cloning"

    def __init__(self, cfg: Config, data: Optional[TensorData] = None,
                 init: Optional[Dict[str, torch.Tensor]] = None) -> None:
        p = self.settings = cfg.backprop_cloning
        if p.local_batch % p.local_copies:
            raise ValueError(f"backprop_cloning.local_batch ({p.local_batch}) must be a multiple of "
                             f"backprop_cloning.local_copies ({p.local_copies})")
        self.cfg, self.device = cfg, get_device(cfg.device)
        self.schedule = stage_schedule(cfg)
        self.total = sum(its for _, its in self.schedule)
        self.log_every, self.checkpoint_every = p.log_every, p.checkpoint_every
        self.ends = set()  # iterations that end a stage
        first = 0
        for _, its in self.schedule:
            first += its
            self.ends.add(first)
        if data is None and any(s != "local" for s, _ in self.schedule):
            data = downsample_dataset(load_dataset("mnist", train=True, root=cfg.data.root,
                                                   download=cfg.data.download), p.input_side)
        self.data = data.to(self.device) if data is not None else None  # batches are indexed there
        lstm = new_clone_lstm(cfg)
        if init is not None:
            lstm.load_state_dict(init)
        elif p.init_forward_clone:
            lstm.load_state_dict(forward_clone_state(cfg, p.init_forward_clone))
        self.lstm = lstm.to(self.device)
        self.learners = {s: make_learner(self.lstm, cfg, stage_sizes(cfg, s)) for s, _ in self.schedule}
        mode = compiled.resolve(cfg.compile, self.device)
        self.rollouts = {s: compiled.Step(functools.partial(rollout_losses, learner), mode, f"{self.name} ({s})")
                         for s, learner in self.learners.items()}
        # The warm-up's SGD steps, hundreds per iteration: fused, without CUDA graphs (each
        # step's output feeds the next call).
        self.warmup_step = compiled.Step(formula_sgd_step, compiled.resolve(cfg.compile, self.device, graphs=False),
                                         f"{self.name} (warm-up SGD)")
        self.gen = make_generator(cfg.seed + 1)
        self.opt = self.sched = self.opt_stage = None
        self.pool: Dict[str, object] = {}  # the current stage's persistent learners (see _refresh_pool)
        self.snapshots: Dict[str, Dict[str, torch.Tensor]] = {}
        self._resumed_optimizer: Optional[Dict[str, object]] = None

    def stage_at(self, iteration: int) -> Tuple[str, int, int]:
        """``(stage, first iteration, iterations)`` of the stage that ``iteration`` belongs to."""
        first = 0
        for stage, its in self.schedule:
            if iteration < first + its:
                return stage, first, its
            first += its
        raise IndexError(f"iteration {iteration} is past the curriculum's {self.total}")

    def _start_optimizer(self, stage: str, its: int) -> None:
        p = self.settings
        self.opt = torch.optim.Adam(self.lstm.parameters(), lr=p.lr if stage == "local" else p.net_lr,
                                    fused=self.device.type == "cuda")
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda i, its=its: 0.5 * (1 + math.cos(math.pi * min(i, its) / its)))
        self.opt_stage = stage
        resumed, self._resumed_optimizer = self._resumed_optimizer, None
        if resumed is not None and resumed["stage"] == stage:  # resuming inside this stage
            self.opt.load_state_dict(resumed["optimizer"])
            self.sched.load_state_dict(resumed["scheduler"])

    def step(self, iteration: int) -> Dict[str, torch.Tensor]:
        p, cfg = self.settings, self.cfg
        stage, first, its = self.stage_at(iteration)
        if stage != self.opt_stage:
            if iteration == first:  # a new stage: its own pool of learners
                self.pool = {}
            self._start_optimizer(stage, its)
        learner = self.learners[stage]
        # Continue the pool's learners; fresh ones replace a few (see _refresh_pool), and are
        # drawn only when some are replaced.
        reset = _draw_resets(self.pool, stage_groups(cfg, stage), p.horizon, self.gen)
        weights, batches, errors_from, given = sample_stage(cfg, stage, self.data, self.gen, self.device,
                                                            fresh=reset is None or bool(reset.any()),
                                                            sgd_step=self.warmup_step)
        weights, start = _refresh_pool(self.pool, learner, weights, reset, batches[0][0].shape[1], p.state_scale)
        compiled.mark_step_begin(self.device)
        losses, final = self.rollouts[stage](weights, batches, learning_rate(cfg), p.value_unit, p.state_scale,
                                             p.update_unit, errors_from, given, state=start,
                                             part_weights=p.update_part_weights)
        self.pool["state"] = [(s.h.detach(), s.c.detach()) for s in final]
        G = weights[0][0].shape[0]
        self.pool["weights"] = [(w.detach(), b.detach()) for w, b in read_weights(final, G, p.state_scale)]
        loss = losses["forward"] + losses["backward"] + p.update_loss_weight * losses["update"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        if iteration + 1 == first + its:
            self.snapshots[stage] = {k: v.detach().cpu().clone() for k, v in self.lstm.state_dict().items()}
        return {k: v.detach() for k, v in losses.items()}

    def log_point(self, done: int) -> bool:
        return done in self.ends

    def log_fields(self, done: int) -> Dict[str, str]:
        return {"stage": self.stage_at(done - 1)[0]}

    def state_dict(self) -> Dict[str, object]:
        return {"lstm": self.lstm.state_dict(), "generator": self.gen.get_state(), "snapshots": self.snapshots,
                "optimizer": self.opt.state_dict() if self.opt else None,
                "scheduler": self.sched.state_dict() if self.sched else None, "stage": self.opt_stage,
                "pool": _pack_pool(self.pool)}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.lstm.load_state_dict(state["lstm"])
        self.gen.set_state(state["generator"])
        self.snapshots = state["snapshots"]
        self.pool = _unpack_pool(state["pool"], self.device)
        self._resumed_optimizer = state if state["optimizer"] is not None else None


def _pack_pool(pool: Dict[str, object]) -> Dict[str, object]:
    """The pool for a checkpoint. Its learners' copies hold the same state (they were averaged
    last), so one copy per learner is stored: the local stage's pool of 32,768 sub-LSTMs
    weighs 32 times less. A pool whose copies differ is stored whole."""
    if not pool:
        return {}
    packed = {"weights": pool["weights"], "state": pool["state"], "copies": 1}
    G = pool["weights"][0][0].shape[0]
    n = pool["state"][0][0].shape[0] // G
    firsts = [(h[::n].clone(), c[::n].clone()) for h, c in pool["state"]]  # not views: torch.save
    # would write a view's whole storage
    if all(torch.equal(h, fh.repeat_interleave(n, 0)) and torch.equal(c, fc.repeat_interleave(n, 0))
           for (h, c), (fh, fc) in zip(pool["state"], firsts)):
        packed.update(state=firsts, copies=n)
    return packed


def _unpack_pool(packed: Dict[str, object], device) -> Dict[str, object]:
    if not packed:
        return {}
    n = packed["copies"]
    return {"weights": [(w.to(device), b.to(device)) for w, b in packed["weights"]],
            "state": [(h.repeat_interleave(n, 0).to(device), c.repeat_interleave(n, 0).to(device))
                      for h, c in packed["state"]]}


def train_backprop_cloning(cfg: Config, checkpoint: Union[str, Path, None] = None,
                           progress: bool = True, data: Optional[TensorData] = None,
                           init: Optional[Dict[str, torch.Tensor]] = None,
                           deadline: Optional[float] = None) -> CloneTrainResult:
    """Clone backpropagation into a sub-LSTM through the curriculum of Appendix B
    (:class:`BackpropCloningTask`, run by :func:`vsml_lite.training.run`).

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
        deadline: stop (checkpointed) at this ``time.monotonic()``; see ``finished``.
    """
    task = BackpropCloningTask(cfg, data, init)
    # A checkpoint of another message layout would resume into the wrong slots: refused.
    out = training.run(task, checkpoint, training.config_guard(cfg, ("backprop_cloning", "network", "data"), clone_layout=CLONE_LAYOUT), progress, deadline)
    h = out.history
    curves = {"iteration": h["iteration"], **{k: h.get(k, []) for k in ("stage", "forward", "backward", "update")}}
    return CloneTrainResult(lstm=task.lstm, curves=curves, seconds=out.seconds, resumed_from=out.resumed_from,
                            snapshots=task.snapshots, finished=out.finished, code_versions=out.code_versions)
