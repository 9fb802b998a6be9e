"""Inside the network: one meta-test episode of a VSML learner, step by step, and where in its
states the class templates live. Chapter 5.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from ..data import NUM_CLASSES
from ..device import make_generator
from ..network import VSMLNetwork
from .episodes import cumulative_accuracy
from .learners import feedback, feedback_size


@torch.no_grad()
def trace_episode(learner: VSMLNetwork, images: torch.Tensor, labels: torch.Tensor,
                  units: Optional[Sequence[int]] = None, seed: int = 0,
                  state_clip: Optional[float] = None) -> Dict[str, torch.Tensor]:
    """Run a VSML learner on one stream and record what it does at every step.

    Args:
        images: ``[T, A]``; labels: ``[T]``.
        units: output units whose sub-LSTMs' cell states are recorded (default: all).

    Returns CPU tensors: ``cells [T + 1, A, U, H]`` (the cell states of the columns of the
    recorded output units, before step 0 and after every step: the states that play the role
    of those units' incoming weights), ``probs [T, C]`` (softmax of each prediction),
    ``images [T, A]``, ``labels [T]``, ``correct [T]``, ``accuracy [T]`` (cumulative) and
    ``units``.
    """
    if images.dim() != 2 or labels.shape != images.shape[:1]:
        raise ValueError(f"images must be [T, A] and labels [T], got {list(images.shape)}, {list(labels.shape)}")
    units = list(range(NUM_CLASSES)) if units is None else list(units)
    state = learner.initial_state(1, generator=make_generator(seed))
    error = images.new_zeros(1, feedback_size(learner))  # nothing to read before the first step
    cells, probs = [state[0].c[0, :, units].clone()], []
    for t in range(images.shape[0]):
        state, y = learner.step(state, images[t : t + 1], error, state_clip=state_clip)
        error = feedback(learner, y, labels[t : t + 1])
        cells.append(state[0].c[0, :, units].clone())
        probs.append(torch.softmax(y[0], -1))
    probs = torch.stack(probs)
    correct = probs.argmax(-1) == labels
    return {"cells": torch.stack(cells).cpu(), "probs": probs.cpu(), "images": images.cpu(),
            "labels": labels.cpu(), "correct": correct.cpu(),
            "accuracy": cumulative_accuracy(correct[:, None])[:, 0].cpu(), "units": torch.tensor(units)}


def unit_specific(cells: torch.Tensor) -> torch.Tensor:
    """The part of each output unit's column of cell states that the other recorded units do
    not share: ``cells [..., A, U, H]`` minus its mean over ``U``. A class-specific weight
    lives here; what every column does alike (a common drift, a saturation) cancels."""
    return cells - cells.mean(dim=-2, keepdim=True)


def template_correlation(trace: Dict[str, torch.Tensor]) -> torch.Tensor:
    """For every cell dimension ``k``: the correlation, averaged over the recorded output units
    ``u`` whose class occurred in the stream, between the unit-specific state of column ``u``
    at the end of the stream (:func:`unit_specific`) and the average image of class ``u`` seen
    in the stream (minus the average of all images). ``[H]``; a value near ±1 means that
    dimension holds a class template, as the weights of a trained linear classifier would."""
    spec = unit_specific(trace["cells"][-1])  # [A, U, H]
    images, labels = trace["images"], trace["labels"]
    overall = images.mean(0)
    out = torch.zeros(spec.shape[-1])
    used = 0
    for j, u in enumerate(trace["units"].tolist()):
        seen = labels == u
        if not seen.any():
            continue
        template = images[seen].mean(0) - overall  # [A]
        a = template - template.mean()
        b = spec[:, j, :] - spec[:, j, :].mean(0)  # [A, H]
        out += (a[:, None] * b).sum(0) / (a.norm() * b.norm(dim=0)).clamp_min(1e-12)
        used += 1
    return out / max(used, 1)


def weight_like_dimension(trace: Dict[str, torch.Tensor]) -> int:
    """The cell dimension whose unit-specific states look most like class templates
    (largest ``|template_correlation|``)."""
    return int(template_correlation(trace).abs().argmax())
