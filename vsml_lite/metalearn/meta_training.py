"""Meta-training (Section 3.3): Adam on V_M with the gradient of the episodes' mean
cross-entropy, through every step of the unrolled learner. Chapter 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
from torch import nn

from .. import compiled, training
from ..config import META_OPTIMIZERS, Config
from ..data import NUM_CLASSES, TensorData, downsample_dataset, load_dataset
from ..device import get_device, make_generator
from ..distributed import all_reduce_gradients, all_reduce_sum, distributed_context, shard
from .episodes import flatten_state, sample_episodes, unflatten_state, unroll
from .es import antithetic_gradient
from .learners import build_learner, permutes_labels
from .memory import peak_memory_mb, reset_peak_memory


def load_split(cfg: Config, name: str, train: bool) -> TensorData:
    """MNIST or Fashion-MNIST at the chapter's input size, on ``cfg.device``, standardised
    with its own pixel statistics or MNIST's (``meta_learning.fashion_stats``)."""
    stats = "mnist" if cfg.meta_learning.fashion_stats == "mnist" else None
    data = load_dataset(name, train=train, root=cfg.data.root, download=cfg.data.download, stats_of=stats)
    return downsample_dataset(data, cfg.meta_learning.input_side).to(get_device(cfg.device))


#: Whose peak memory a record gives: this model's (the peak was reset before it meta-trained;
#: it counts what the process already held) or the whole process's (no reset was possible).
SCOPE_MODEL = "this model's peak (reset before it meta-trained)"
SCOPE_PROCESS = "the process's peak, not reset between models"


@dataclass
class MetaTrainResult:
    """What :func:`meta_train` returns: the meta-trained learner and its history."""

    learner: nn.Module
    steps: List[int] = field(default_factory=list)
    losses: List[float] = field(default_factory=list)
    accuracies: List[float] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    #: whose peak ``peak_memory_mb`` is: :data:`SCOPE_MODEL` or :data:`SCOPE_PROCESS`
    peak_memory_scope: str = SCOPE_PROCESS
    resumed_from: int = 0
    #: whether all iterations ran (``False`` when a deadline stopped the run, checkpointed)
    finished: bool = True
    #: the code versions that ran it (a run resumed across sessions may have several)
    code_versions: List[str] = field(default_factory=list)
    #: the norm of the meta-gradient before clipping, per logged point (mean)
    grad_norms: List[float] = field(default_factory=list)


class MetaTrainingTask:
    """One Adam step on V_M per iteration, as a :class:`~vsml_lite.training.Task`.

    Every iteration draws ``meta_batch`` episodes (:func:`sample_episodes`) and fresh random
    initial states from one generator, unrolls the learner over them (:func:`unroll`,
    checkpointed in chunks), and steps Adam with the gradient of the mean cross-entropy, its
    norm clipped to ``grad_clip`` (an ES estimate is not clipped).

    Under ``torch.distributed`` (``torchrun``) every process draws the same episodes, unrolls
    only its share of them (:func:`vsml_lite.distributed.shard`) and the meta-gradients are
    summed (:func:`vsml_lite.distributed.all_reduce_gradients`): the same meta-gradient as one
    process's, up to the order of float additions (``tests/test_metalearn.py``), so every
    process takes the same Adam step.
    """

    def __init__(self, cfg: Config, model: str, data: Optional[TensorData] = None) -> None:
        m = self.settings = cfg.meta_learning
        self.name, self.model, self.device = f"meta-training {model}", model, get_device(cfg.device)
        self.total, self.log_every, self.checkpoint_every = m.iterations, m.log_every, m.checkpoint_every
        self.data = load_split(cfg, "mnist", train=True) if data is None else data
        self.learner = build_learner(cfg, model, make_generator(cfg.seed))
        self.permute = permutes_labels(cfg, model)
        self.opt = torch.optim.Adam(self.learner.parameters(), lr=m.lr, fused=self.device.type == "cuda")
        mode = compiled.resolve(cfg.compile, self.device, graphs=False)
        self.learner_step = compiled.Step(self.learner.step, mode, f"{self.name} (one step)")
        self.gen = make_generator(cfg.seed + 1)  # episodes and initial states
        # ES directions come from their own generator, so both optimisers see the same episodes
        self.noise_gen = make_generator(cfg.seed + 3)
        self.peak_memory_mb = 0.0

    def meta_gradient(self) -> Dict[str, torch.Tensor]:
        """Draw the next batch of episodes, unroll, and leave the meta-gradient in the
        parameters' ``.grad`` (summed over processes): backpropagated, or estimated by ES
        (``meta_optimizer``). Returns the batch's mean loss and accuracy (over all processes'
        episodes; for ES, over the ``2 · meta_batch`` evaluations at ``V_M ± σε``)."""
        m = self.settings
        images, labels = sample_episodes(self.data, m.meta_batch, m.episode_length, self.gen, self.permute)
        state0 = self.learner.initial_state(m.meta_batch, generator=self.gen)
        self.opt.zero_grad(set_to_none=True)
        if m.meta_optimizer == "es":
            return self._es_gradient(images, labels, state0)
        _, world = distributed_context()
        if world == 1:
            logits, _, _ = unroll(self.learner, images, labels, state0, m.state_clip, m.checkpoint_chunk,
                                  step=self.learner_step)
            loss = nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES), labels.reshape(-1))
            loss.backward()
            return {"loss": loss.detach(), "accuracy": (logits.argmax(-1) == labels).float().mean()}
        mine = shard(m.meta_batch)  # this process's episodes
        state0 = unflatten_state(state0, [t[mine] for t in flatten_state(state0)])
        logits, _, _ = unroll(self.learner, images[:, mine], labels[:, mine], state0, m.state_clip,
                              m.checkpoint_chunk, step=self.learner_step)
        count = labels.numel()  # every process's share divided by the whole batch's size
        loss = nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES), labels[:, mine].reshape(-1),
                                           reduction="sum") / count
        loss.backward()
        all_reduce_gradients(self.learner.parameters())
        sums = torch.stack([loss.detach(), (logits.argmax(-1) == labels[:, mine]).float().sum() / count])
        all_reduce_sum(sums)
        return {"loss": sums[0], "accuracy": sums[1]}

    @torch.no_grad()
    def _es_gradient(self, images: torch.Tensor, labels: torch.Tensor, state0) -> Dict[str, torch.Tensor]:
        """OpenAI-ES (:func:`~vsml_lite.metalearn.es.antithetic_gradient`): member ``k`` is
        episode ``k``, judged at ``V_M ± σ ε_k`` from the same initial state. Every process
        draws the same noise (from the task's noise generator) and evaluates its share of members."""
        m, params = self.settings, list(self.learner.parameters())
        theta = nn.utils.parameters_to_vector(params)
        noise = torch.randn(m.meta_batch, theta.numel(), generator=self.noise_gen).to(theta)
        flat0, hits = flatten_state(state0), torch.zeros(1)

        def loss_of(k: int, vector: torch.Tensor) -> torch.Tensor:
            nn.utils.vector_to_parameters(vector, params)
            state = unflatten_state(state0, [t[k : k + 1] for t in flat0])
            logits, _, _ = unroll(self.learner, images[:, k : k + 1], labels[:, k : k + 1], state,
                                  m.state_clip, step=self.learner_step)
            hits.add_((logits[:, 0].argmax(-1) == labels[:, k]).float().mean().cpu())
            return nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES), labels[:, k])

        grad, loss = antithetic_gradient(loss_of, theta, noise, m.es_sigma)
        accuracy = all_reduce_sum(hits.to(theta.device)) / (2 * m.meta_batch)
        nn.utils.vector_to_parameters(theta, params)  # back to V_M itself
        for p, g in zip(params, torch.split(grad, [p.numel() for p in params])):
            p.grad = g.view_as(p).clone()
        return {"loss": loss, "accuracy": accuracy[0]}

    def step(self, iteration: int) -> Dict[str, torch.Tensor]:
        metrics = self.meta_gradient()
        # the official ES steps Adam with its estimate unclipped; the norm is logged either way
        clip = math.inf if self.settings.meta_optimizer == "es" else self.settings.grad_clip
        norm = nn.utils.clip_grad_norm_(self.learner.parameters(), clip)
        self.opt.step()
        return {**metrics, "grad_norm": norm.detach()}

    def log_fields(self, done: int) -> Dict[str, float]:
        self.peak_memory_mb = max(self.peak_memory_mb, peak_memory_mb(self.device))
        return {"peak_memory_mb": self.peak_memory_mb}

    def state_dict(self) -> Dict[str, object]:
        return {"model": self.model, "learner": self.learner.state_dict(), "optimizer": self.opt.state_dict(),
                "generator": self.gen.get_state(), "noise_generator": self.noise_gen.get_state(),
                "peak_memory_mb": self.peak_memory_mb}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])
        if "noise_generator" in state:  # checkpoints made before ES existed drew no noise
            self.noise_gen.set_state(state["noise_generator"])
        self.peak_memory_mb = state["peak_memory_mb"]


def meta_train(cfg: Config, model: str, checkpoint: Union[str, Path, None] = None,
               progress: bool = True, data: Optional[TensorData] = None,
               deadline: Optional[float] = None) -> MetaTrainResult:
    """Meta-train ``model`` (one of :data:`~vsml_lite.metalearn.learners.MODELS`) on MNIST
    training episodes (:class:`MetaTrainingTask`, run by :func:`vsml_lite.training.run`).
    Every model gets the same iterations, episodes (with or without permuted labels:
    :func:`~vsml_lite.metalearn.learners.permutes_labels`) and optimiser.

    Args:
        checkpoint: file for resumable training (rewritten every ``checkpoint_every``
            iterations and on Ctrl-C / SIGTERM); a resumed run equals an uninterrupted one.
            Under ``torch.distributed`` only rank 0 writes it.
        data: the MNIST training split at the chapter's input size (loaded when ``None``).
        deadline: stop (checkpointed) at this ``time.monotonic()``; see ``finished``.
    """
    per_model = reset_peak_memory(get_device(cfg.device))  # the peak below is this model's
    task = MetaTrainingTask(cfg, model, data)
    rank, _ = distributed_context()
    out = training.run(task, checkpoint, training.config_guard(cfg, ("meta_learning", "network", "data"), model=model), progress, deadline,
                       writer=rank == 0)
    h = out.history
    peak = max(task.peak_memory_mb, peak_memory_mb(task.device))
    return MetaTrainResult(learner=task.learner, steps=h["iteration"], losses=h.get("loss", []),
                           accuracies=h.get("accuracy", []), seconds=out.seconds, peak_memory_mb=peak,
                           resumed_from=out.resumed_from, finished=out.finished,
                           code_versions=out.code_versions, grad_norms=h.get("grad_norm", []),
                           peak_memory_scope=SCOPE_MODEL if per_model else SCOPE_PROCESS)


def compare_meta_optimizers(cfg: Config, model: str, data: Optional[TensorData] = None,
                            progress: bool = False) -> Dict[str, MetaTrainResult]:
    """Meta-train ``model`` once with each of :data:`~vsml_lite.config.META_OPTIMIZERS`, from the same V_M and the
    same episodes, for ``meta_learning.compare_iterations`` iterations (logging every
    iteration; no checkpoint). Returns ``{optimizer: MetaTrainResult}``."""
    m = cfg.meta_learning
    short = {"meta_learning.iterations": m.compare_iterations, "meta_learning.log_every": 1}
    return {opt: meta_train(cfg.override({**short, "meta_learning.meta_optimizer": opt}), model,
                            progress=progress, data=data) for opt in META_OPTIMIZERS}
