"""Episodes: a learner run online over a stream of examples, with its previous error fed back
(Section 3.3); meta-training episodes, meta-test streams and Figure 6's metric. Chapter 5.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..data import NUM_CLASSES, OnlineStream, TensorData
from ..device import make_generator, to_device
from ..network import LayerState
from .learners import feedback, feedback_size


def flatten_state(state) -> List[torch.Tensor]:
    """A learner state as a flat list of tensors (what gradient checkpointing passes along)."""
    if isinstance(state, list):
        return [t for s in state for t in (s.h, s.c, s.fwd_in, s.bwd_in)]
    return list(state)


def unflatten_state(like, tensors: Sequence[torch.Tensor]):
    """Inverse of :func:`flatten_state`, shaped like ``like``."""
    if isinstance(like, list):
        return [LayerState(*tensors[4 * i : 4 * i + 4]) for i in range(len(like))]
    return tuple(tensors)


def unroll(learner: nn.Module, images: torch.Tensor, labels: torch.Tensor, state,
           state_clip: Optional[float] = None, chunk: int = 0, error: Optional[torch.Tensor] = None,
           step: Optional[Callable] = None):
    """Run ``learner`` online over an episode: step ``t`` sees ``images[t]`` and the error of
    step ``t - 1`` (zeros at ``t = 0``), with the label of step ``t - 1`` for a learner that
    reads labels (:func:`~vsml_lite.metalearn.learners.feedback`).

    Args:
        images: ``[T, n, A]``; labels: ``[T, n]`` (the labels only enter through the errors).
        state: the learner's state for ``n`` copies (from ``initial_state``).
        chunk: when gradients are enabled and ``chunk > 0``, checkpoint every ``chunk`` steps
            (see the module docstring); the result is the same.
        error: the feedback entering step 0 (default zeros).
        step: what runs one step (default ``learner.step``; a compiled version of it, see
            :class:`vsml_lite.compiled.Step`).

    Returns:
        ``(logits [T, n, C], final state, final feedback [n, F])``.
    """
    T, n = labels.shape
    if images.dim() != 3 or images.shape[:2] != (T, n):
        raise ValueError(f"images must have shape [T, n, A] = [{T}, {n}, A], got {list(images.shape)}")
    if error is None:
        error = images.new_zeros(n, feedback_size(learner))
    step = learner.step if step is None else step

    def run(lo: int, hi: int, err: torch.Tensor, *flat: torch.Tensor):
        st, ys = unflatten_state(state, flat), []
        for t in range(lo, hi):
            st, y = step(st, images[t], err, state_clip=state_clip)
            err = feedback(learner, y, labels[t])  # read at the next step
            ys.append(y)
        return (torch.stack(ys), err, *flatten_state(st))

    span = chunk if chunk and chunk > 0 else T
    flat, logits = flatten_state(state), []
    for lo in range(0, T, span):
        hi = min(T, lo + span)
        if span < T and torch.is_grad_enabled():
            out = _checkpoint(run, lo, hi, error, *flat, use_reentrant=False)
        else:
            out = run(lo, hi, error, *flat)
        logits.append(out[0])
        error, flat = out[1], list(out[2:])
    return torch.cat(logits), unflatten_state(state, flat), error


def sample_episodes(data: TensorData, batch: int, length: int, gen: torch.Generator,
                    permute_labels: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """``batch`` meta-training episodes of ``length`` examples drawn at random from ``data``
    (on the CPU, from ``gen``). With ``permute_labels`` each episode relabels the classes by
    its own random permutation. Returns ``images [T, n, A]`` and ``labels [T, n]`` on the
    device of ``data``."""
    idx = torch.randint(len(data), (batch, length), generator=gen)  # [n, T]
    labels = data.labels.cpu()[idx]
    if permute_labels:
        perm = torch.argsort(torch.rand(batch, NUM_CLASSES, generator=gen), dim=1)  # [n, C]
        labels = perm.gather(1, labels)
    dev = data.images.device
    return data.images[to_device(idx, dev)].transpose(0, 1), to_device(labels, dev).transpose(0, 1)


def test_streams(data: TensorData, seeds: Sequence[int], steps: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The meta-test streams: for each seed the examples that :class:`OnlineStream` yields
    (a seeded permutation of ``data``), stacked as ``images [steps, S, A]``, ``labels
    [steps, S]``. Every model and baseline is tested on these same tensors."""
    xs, ys = [], []
    for seed in seeds:
        pairs = list(OnlineStream(data, seed=seed, steps=steps))
        xs.append(torch.stack([p[0] for p in pairs]))
        ys.append(torch.stack([p[1] for p in pairs]))
    return torch.stack(xs, dim=1), torch.stack(ys, dim=1)


def cumulative_accuracy(correct: torch.Tensor) -> torch.Tensor:
    """Figure 6's metric: at step ``t``, the accuracy over all inputs up to ``t``
    (each predicted before its label was known). ``correct [T, S] -> [T, S]``."""
    steps = torch.arange(1, correct.shape[0] + 1, dtype=torch.float32, device=correct.device)
    return correct.float().cumsum(0) / steps[:, None]


@torch.no_grad()
def meta_test(learner: nn.Module, images: torch.Tensor, labels: torch.Tensor, seed: int,
              state_clip: Optional[float] = None) -> Dict[str, torch.Tensor]:
    """Run a meta-trained learner on streams with no gradient anywhere.

    Returns CPU tensors ``correct [T, S]`` (bool), ``loss [T, S]`` (cross-entropy of each
    prediction) and ``accuracy [T, S]`` (:func:`cumulative_accuracy`)."""
    p = next(learner.parameters())
    images, labels = images.to(p.device, p.dtype), labels.to(p.device)
    state = learner.initial_state(labels.shape[1], generator=make_generator(seed))
    logits, _, _ = unroll(learner, images, labels, state, state_clip=state_clip)
    return scores(logits, labels)


def scores(logits: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
    T, S = labels.shape
    loss = nn.functional.cross_entropy(logits.reshape(T * S, -1), labels.reshape(-1), reduction="none")
    correct = (logits.argmax(-1) == labels).cpu()
    return {"correct": correct, "loss": loss.reshape(T, S).cpu(), "accuracy": cumulative_accuracy(correct)}
