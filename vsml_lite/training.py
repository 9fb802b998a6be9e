"""One resumable training loop for every long run of the package.

Forward cloning (Chapter 3), backprop cloning (Chapter 4), meta-training (Chapter 5) and the
CMA-ES search (Chapter 6) differ only in what one iteration does and what it must remember.
Each is a :class:`Task`: a ``step(iteration)`` that returns its metrics, and a
``state_dict()`` / ``load_state_dict()`` pair for everything a resumed run needs (weights,
optimiser, random generator). :func:`run` owns the rest, once:

* **checkpoints**: every ``checkpoint_every`` iterations, on Ctrl-C / SIGTERM and when a time
  budget runs out, written through :func:`vsml_lite.artifacts.save_checkpoint` (a temporary
  file per process, flushed to disk, then renamed: a reader never sees a torn file, however
  many processes write the same path). A checkpoint records the config it belongs to and the
  code versions that ran it; a run resumed from it continues bit for bit (tests).
* **a non-finite guard**: a NaN or infinite metric (a loss, a gradient norm) stops the run
  with :class:`NonFiniteError`, which names the first iteration it happened at; no checkpoint
  is written after it, so the last good one stays.
* **metrics on the device**: a step returns tensors; they are summed where they live and read
  (one host synchronisation) every ``log_every`` iterations only.
* the progress bar, the wall-clock time and the loss curves (``history``).

Example (a toy task: fit one number)::

    class Fit:
        name, total, log_every, checkpoint_every = "fit", 100, 10, 50
        def __init__(self):
            self.x = torch.zeros((), requires_grad=True)
            self.opt = torch.optim.SGD([self.x], lr=0.1)
        def step(self, iteration):
            loss = (self.x - 3) ** 2
            self.opt.zero_grad(); loss.backward(); self.opt.step()
            return {"loss": loss.detach()}
        def state_dict(self):
            return {"x": self.x.detach().clone(), "opt": self.opt.state_dict()}
        def load_state_dict(self, s):
            with torch.no_grad(): self.x.copy_(s["x"])
            self.opt.load_state_dict(s["opt"])

    result = run(Fit(), checkpoint="fit.ckpt", guard={"lr": 0.1})
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Union

import torch

from .artifacts import code_version, load_checkpoint, save_checkpoint
from .device import keep_freed_memory

#: Config fields that say where and how a run executes, not what it computes: a checkpoint
#: made on one device resumes on another (a campaign moves between GPU windows and the CPU).
EXECUTION_FIELDS = ("device", "compile")


class Task(Protocol):
    """What :func:`run` drives. Attributes ``name`` (for messages and the progress bar),
    ``total`` (iterations of the whole run), ``log_every`` and ``checkpoint_every``.

    Optional methods: ``log_point(done) -> bool`` (log here too, e.g. at the end of a
    curriculum stage) and ``log_fields(done) -> dict`` (values recorded as they are at a log
    point, not averaged: the stage, the peak memory)."""

    name: str
    total: int
    log_every: int
    checkpoint_every: int

    def step(self, iteration: int) -> Mapping[str, Union[torch.Tensor, float]]:
        """Do iteration ``iteration`` (0-based); return scalar metrics (tensors stay on the device)."""

    def state_dict(self) -> Dict[str, Any]:
        """Everything a resumed run needs, on any device."""

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class NonFiniteError(FloatingPointError):
    """A metric of a run became NaN or infinite; the message names the iteration."""


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes:
        history: ``{"iteration": [...], <metric>: [...], <log field>: [...]}``, one entry per
            log point; each metric is its mean over the iterations since the previous point.
        seconds: wall-clock time spent in the loop, over all sessions of the run.
        resumed_from: the iteration the run started at in this call (0 when fresh).
        done: iterations completed.
        finished: ``done == total`` (``False`` when a time budget stopped the run early).
        code_versions: the code versions that ran it, oldest first (a campaign spans sessions).
    """

    history: Dict[str, List[Any]] = field(default_factory=lambda: {"iteration": []})
    seconds: float = 0.0
    resumed_from: int = 0
    done: int = 0
    finished: bool = False
    code_versions: List[str] = field(default_factory=list)


def config_guard(cfg, sections: Optional[Sequence[str]] = None, **extra: Any) -> Dict[str, Any]:
    """What a checkpoint must match to be resumed: ``cfg.to_dict()`` without the
    :data:`EXECUTION_FIELDS`, plus ``extra`` (e.g. which model is meta-trained).

    ``sections``: the config sections that shape this run (e.g. ``("forward_cloning",
    "data")``); the top-level fields (seed, dtype) always count, the other sections do not,
    so a default changed in another chapter's section does not refuse a campaign's
    checkpoint. ``None`` keeps every section."""
    guard = {k: v for k, v in cfg.to_dict().items()
             if k not in EXECUTION_FIELDS and (sections is None or not isinstance(v, dict) or k in sections)}
    guard.update(extra)
    return guard


def same_guard(saved: Optional[Mapping[str, Any]], current: Mapping[str, Any]) -> bool:
    """Whether a checkpoint's guard allows resuming under ``current``.

    Code changes between the sessions of a long run: a config field added since the checkpoint
    was made counts as the same when it sits at its default (the run behaved as that default),
    and :data:`EXECUTION_FIELDS` never count. A field the code no longer has, or any other
    difference, refuses the checkpoint."""
    if saved is None:
        return False
    drop = _config_fields() - set(current)  # sections this run's guard does not count
    a, b = _normalised(saved), _normalised(current)
    return {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}


def _config_fields() -> set:
    """Names of :class:`~vsml_lite.config.Config`'s top-level fields and sections."""
    import dataclasses

    from .config import Config

    return {f.name for f in dataclasses.fields(Config)}


def _normalised(guard: Mapping[str, Any]) -> Dict[str, Any]:
    from .config import Config

    names = _config_fields()
    config = {k: v for k, v in guard.items() if k in names}
    extra = {k: v for k, v in guard.items() if k not in names}
    if config:
        try:
            config = Config.from_dict(config).to_dict()  # fields added since take their defaults
        except (TypeError, ValueError):  # a field the code no longer has
            return dict(guard)
        for k in EXECUTION_FIELDS:
            config.pop(k, None)
    return {**config, **extra}


class StopRequest:
    """While active, Ctrl-C (SIGINT) and SIGTERM only set ``requested``; :func:`run` checks it
    between iterations, saves a checkpoint and stops. A second Ctrl-C stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "StopRequest":
        for sig in self.SIGNALS:
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run(task: Task, checkpoint: Union[str, Path, None] = None, guard: Optional[Mapping[str, Any]] = None,
        progress: bool = True, deadline: Optional[float] = None, writer: bool = True) -> RunResult:
    """Run ``task`` from its checkpoint (if any) to ``task.total`` iterations.

    Args:
        task: the :class:`Task`.
        checkpoint: file to resume from and write to; ``None`` for a run without one.
        guard: what the checkpoint must have been made with (:func:`config_guard`); a
            checkpoint with another guard is refused with ``ValueError``.
        progress: show a tqdm bar.
        deadline: a ``time.monotonic()`` value; once passed, the run writes its checkpoint and
            returns with ``finished = False`` (campaigns in fixed time windows).
        writer: whether this process writes the checkpoint (under ``torch.distributed`` only
            rank 0 does; every process runs the loop).

    Raises:
        KeyboardInterrupt: after Ctrl-C / SIGTERM, once the checkpoint is written; the message
            says where the run stopped and how to resume it.
        NonFiniteError: a metric became NaN or infinite (nothing is written after it).
        ValueError: the checkpoint belongs to another config.
    """
    from tqdm.auto import tqdm

    if getattr(task, "device", torch.device("cpu")).type == "cpu":
        keep_freed_memory()  # no page faults on the step's large tensors every iteration
    guard = dict(guard or {})
    result = RunResult(code_versions=[code_version()])
    running: Dict[str, Any] = {}
    last_logged = 0  # iteration of the latest log point
    state = load_checkpoint(checkpoint) if checkpoint is not None else None
    if state is not None:
        if not same_guard(state.get("guard"), guard):
            raise ValueError(f"checkpoint {checkpoint} was made with another config; delete it or "
                             "use the config it records")
        task.load_state_dict(state["task"])
        result.history, result.seconds = state["history"], state["seconds"]
        result.resumed_from = result.done = state["iteration"]
        result.code_versions = list(state["code_versions"])
        if result.code_versions[-1] != code_version():
            result.code_versions.append(code_version())
        running = dict(state["running"])
        last_logged = result.history["iteration"][-1] if result.history["iteration"] else 0
    good = result.done  # the iteration of the checkpoint on disk, or the start

    def save(done: int) -> None:
        nonlocal good
        if checkpoint is None or not writer:
            return
        task_state = task.state_dict()
        bad = _first_nonfinite(task_state)
        if bad:
            raise NonFiniteError(f"{task.name}: {bad} is not finite at iteration {done}; not saved"
                                 + _kept(checkpoint, good))
        save_checkpoint(checkpoint, {
            "task": task_state, "iteration": done, "history": result.history, "seconds": result.seconds,
            "running": {k: _host(v) for k, v in running.items()}, "guard": guard,
            "code_versions": result.code_versions, "code_version": result.code_versions[-1],
            "name": task.name, "total": task.total})
        good = done

    nonfinite_at: Optional[torch.Tensor] = None  # on the device: first bad iteration, or -1

    def check_finite() -> None:
        if nonfinite_at is not None and int(nonfinite_at) >= 0:
            bad = [k for k, v in running.items() if not math.isfinite(float(v))]
            raise NonFiniteError(f"{task.name}: {', '.join(bad) or 'a metric'} became NaN or infinite at "
                                 f"iteration {int(nonfinite_at) + 1}; the run stopped" + _kept(checkpoint, good))

    def log(done: int) -> None:
        nonlocal running, last_logged
        check_finite()
        span = done - last_logged
        h = result.history
        h["iteration"].append(done)
        means = {k: float(v) / span for k, v in running.items()}
        fields = task.log_fields(done) if hasattr(task, "log_fields") else {}
        for k, v in {**means, **fields}.items():
            h.setdefault(k, []).append(v)
        running, last_logged = {}, done
        bar.set_postfix({**{k: f"{v:.3g}" for k, v in means.items()},
                         **{k: v for k, v in fields.items() if isinstance(v, str)}})

    bar = tqdm(total=task.total, initial=result.done, disable=not (progress and writer), desc=task.name)
    started = time.perf_counter()
    with StopRequest() as stop:
        for it in range(result.done, task.total):
            metrics = task.step(it)
            for k, v in metrics.items():
                running[k] = running.get(k, 0.0) + _accumulable(v)
            nonfinite_at = _track_nonfinite(nonfinite_at, metrics, it)
            done = result.done = it + 1
            if done % task.log_every == 0 or done == task.total or (
                    hasattr(task, "log_point") and task.log_point(done)):
                log(done)
            bar.update(1)
            out_of_time = deadline is not None and time.monotonic() >= deadline and done < task.total
            if done % task.checkpoint_every == 0 or done == task.total or stop.requested or out_of_time:
                check_finite()
                result.seconds += time.perf_counter() - started
                started = time.perf_counter()
                save(done)
            if stop.requested:
                bar.close()
                where = f"; progress is saved in {checkpoint}, run again to resume" if checkpoint else ""
                raise KeyboardInterrupt(f"{task.name} stopped at iteration {done}{where}")
            if out_of_time:
                break
    bar.close()
    result.finished = result.done == task.total
    return result


def _accumulable(v: Union[torch.Tensor, float]):
    """A metric as something to sum without leaving its device: float64 where it can be."""
    if isinstance(v, torch.Tensor):
        v = v.detach()
        return v.double() if v.device.type != "mps" else v.float()
    return float(v)


def _track_nonfinite(first: Optional[torch.Tensor], metrics: Mapping[str, Any], it: int) -> Optional[torch.Tensor]:
    """Update the device-side record of the first iteration with a non-finite metric (no sync)."""
    tensors = [v.detach().reshape(-1).float() for v in metrics.values() if isinstance(v, torch.Tensor)]
    plain = [float(v) for v in metrics.values() if not isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    if first is None:
        first = torch.full((), -1, dtype=torch.int64, device=device)
    if any(not math.isfinite(v) for v in plain):
        return torch.where(first < 0, torch.full_like(first, it), first)
    if tensors:
        finite = torch.isfinite(torch.cat(tensors)).all()
        first = torch.where((first < 0) & ~finite, torch.full_like(first, it), first)
    return first


def _host(v):
    return float(v) if isinstance(v, torch.Tensor) else v


def _first_nonfinite(obj, path: str = "state") -> Optional[str]:
    """The path of the first floating tensor in ``obj`` (nested dicts, lists) with a NaN or
    infinite entry, or ``None``."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
            return path
        return None
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        bad = _first_nonfinite(v, f"{path}[{k!r}]")
        if bad:
            return bad
    return None


def _kept(checkpoint, good: int) -> str:
    if checkpoint is None:
        return ""
    if good == 0 and not Path(checkpoint).exists():
        return f"; no checkpoint was written ({checkpoint})"
    return f"; the last good checkpoint, iteration {good}, is kept in {checkpoint}"
