"""Compiled training steps: ``torch.compile`` where it pays, eager where it does not.

On a GPU a training step of this package is hundreds of tiny kernels (about 55 per network
step in eager mode) and a Python loop that launches them; the arithmetic itself takes far
less time than the launches. ``torch.compile`` fuses the elementwise gate math of every micro
tick into a few kernels, and its ``"reduce-overhead"`` mode replays the whole step as a CUDA
graph, one launch. On the CPU the fused kernel of :mod:`vsml_lite.fused` is faster than
Inductor's code for these shapes, so ``"auto"`` compiles on CUDA only.

Numerics: compiled code may reorder float32 additions and use other approximations of the
transcendentals; tests hold compiled losses and gradients to eager ones within float32
tolerance (``tests/test_compiled.py``). No TF32 or bf16 is used anywhere: matrix products stay
in full float32 (PyTorch's default for ``torch.backends.cuda.matmul.allow_tf32``).
"""

from __future__ import annotations

import warnings
from typing import Callable, Optional

import torch

from .config import COMPILE_SETTINGS as COMPILE_MODES  # the values of ``Config.compile``


def resolve(setting: str, device: torch.device, graphs: bool = True) -> Optional[str]:
    """The ``torch.compile`` mode for ``Config.compile`` on ``device``, or ``None`` for eager.

    ``"auto"``: eager on the CPU; on CUDA ``"reduce-overhead"`` (CUDA graphs) for a function
    called once per iteration (``graphs``), ``"default"`` for one called many times within an
    iteration whose outputs all stay alive for the backward pass (a meta-training step), where
    CUDA-graph trees would keep a copy of every step's outputs."""
    if setting not in COMPILE_MODES:
        raise ValueError(f"unknown compile setting {setting!r}; valid: {', '.join(COMPILE_MODES)}")
    if setting == "auto":
        if device.type != "cuda":
            return None
        return "reduce-overhead" if graphs else "default"
    return None if setting == "off" else setting


class Step:
    """``fn``, compiled with ``mode`` (or left eager when ``mode`` is ``None``).

    If compiling or running the compiled function fails, a warning says why and ``fn`` runs
    eagerly from then on: a long run never dies of a compiler problem (``fn`` must not change
    anything before it can fail: a loss function, not an optimiser step). ``error`` keeps the
    reason.
    """

    def __init__(self, fn: Callable, mode: Optional[str], name: str) -> None:
        self.eager, self.mode, self.name = fn, mode, name
        self.error: Optional[str] = None
        self._compiled = torch.compile(fn, mode=mode, dynamic=False) if mode is not None else None

    @property
    def compiled(self) -> bool:
        """Whether calls run the compiled function."""
        return self._compiled is not None and self.error is None

    def __call__(self, *args, **kwargs):
        if self.compiled:
            try:
                return self._compiled(*args, **kwargs)
            except Exception as err:  # a compiler or CUDA-graph problem: fall back to eager
                self.error = f"{type(err).__name__}: {err}"
                warnings.warn(f"vsml_lite.compiled: {self.name} runs eagerly; compiling it failed ({self.error[:500]})")
        return self.eager(*args, **kwargs)


def mark_step_begin(device: torch.device) -> None:
    """Tell CUDA-graph trees that a new training iteration begins, so the outputs of the
    previous one may be overwritten (``torch.compiler.cudagraph_mark_step_begin``)."""
    if device.type == "cuda" and hasattr(torch.compiler, "cudagraph_mark_step_begin"):
        torch.compiler.cudagraph_mark_step_begin()
