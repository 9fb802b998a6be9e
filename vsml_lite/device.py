"""Device, dtype and seed helpers: the one place that decides where tensors live.

Example:
    >>> import vsml_lite as vl
    >>> cfg = vl.get_config("smoke")
    >>> device = vl.get_device(cfg.device)      # CUDA when available, CPU otherwise
    >>> gen = vl.seed_everything(cfg.seed)      # seeds python, numpy, torch; returns a Generator
"""

from __future__ import annotations

import ctypes
import os
import random
import time
from typing import Optional, Union

import numpy as np
import torch

#: Names accepted by :func:`get_dtype`.
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def get_device(name: Union[str, torch.device, None] = "auto") -> torch.device:
    """Resolve a device name: ``"auto"`` (or ``None``) gives CUDA when available, else CPU.

    Raises:
        ValueError: when CUDA is asked for explicitly but is not available.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


def get_dtype(name: Union[str, torch.dtype]) -> torch.dtype:
    """``"float32"`` / ``"float64"`` (or a ``torch.dtype``) to a ``torch.dtype``."""
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; valid: {', '.join(DTYPES)}")
    return DTYPES[name]


def seed_everything(seed: int, device: Optional[torch.device] = None) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators, and return a fresh
    ``torch.Generator`` seeded the same way (on ``device``, default CPU).

    Prefer passing the returned generator explicitly to the code that draws random numbers;
    the global seeding is there for third-party code that draws from the global generators.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return make_generator(seed, device)


def make_generator(seed: int, device: Optional[torch.device] = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` (default CPU) seeded with ``seed``; no global state."""
    gen = torch.Generator(device=device if device is not None else "cpu")
    gen.manual_seed(seed)
    return gen


def to_device(t: torch.Tensor, device: Optional[torch.device]) -> torch.Tensor:
    """``t`` (drawn or indexed on the CPU) on ``device``, without stalling the host on a GPU.

    A copy from ordinary (pageable) host memory makes the host wait until the GPU has reached
    the copy, so the CPU could not prepare the next batch while the GPU computes. From pinned
    memory the copy is queued like a kernel (``non_blocking``); PyTorch's pinned-memory cache
    keeps the buffer until the copy is done.
    """
    if device is None:
        return t
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


#: glibc ``mallopt`` parameters (malloc.h) and the values :func:`keep_freed_memory` sets: blocks
#: up to 32 MiB (the largest glibc allows for this setting) come from the heap, and the heap
#: keeps up to 1 GiB of freed memory instead of returning it to the system. Larger blocks
#: would still be mapped afresh (and page-faulted) on every allocation, so mapping is turned
#: off (``M_MMAP_MAX`` = 0): every block comes from the heap. Backprop cloning's stage
#: ``local`` saves 32 MiB of gates per two-tick call (32,768 sub-LSTMs of cell 32); a 64 MiB
#: block filled once costs 7.7 ms from the heap and 32.6 ms mapped.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
KEEP_TRIM_BYTES, KEEP_MMAP_BYTES, KEEP_MMAP_MAX = 1 << 30, 32 << 20, 0


def keep_freed_memory() -> bool:
    """Let the C allocator reuse freed memory instead of returning it to the system (glibc).

    A CPU training step allocates and frees the same tensors of several MB every iteration.
    By default glibc serves such blocks with ``mmap`` and returns them when freed (or trims the
    heap), so every iteration touches fresh pages and pays a page fault for each 4 KiB: on the
    Table 1 forward-cloning iteration, 18-20% of its time (``scripts/benchmark_cpu.py``). The
    setting lasts for the process and is harmless elsewhere; :func:`vsml_lite.training.run`
    makes it on the CPU. Returns whether it took effect (``False`` off glibc)."""
    try:
        libc = ctypes.CDLL(None)
        return all(bool(libc.mallopt(param, value)) for param, value in (
            (M_MMAP_THRESHOLD, KEEP_MMAP_BYTES), (M_TRIM_THRESHOLD, KEEP_TRIM_BYTES), (M_MMAP_MAX, KEEP_MMAP_MAX)))
    except (OSError, AttributeError):  # no libc with mallopt (macOS, Windows)
        return False


def busy_cores(window: float = 0.2) -> Optional[float]:
    """How many cores *other* processes keep busy, measured over ``window`` seconds: all CPU
    time from ``/proc/stat`` minus this process's from ``/proc/self/stat``. ``None`` where
    ``/proc`` is missing (not Linux)."""
    def sample():
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0.0)  # all but idle, iowait
        return time.monotonic(), busy / ticks, (float(own[11]) + float(own[12])) / ticks  # utime + stime

    try:
        first = sample()
        time.sleep(window)
        wall, busy, own = (b - a for a, b in zip(first, sample()))
    except (OSError, ValueError, IndexError):
        return None
    return max(busy - own, 0.0) / wall if wall > 0 else 0.0


def free_cores(window: float = 0.2) -> int:
    """The cores other processes leave free (at least 1; all of them where it cannot tell)."""
    cores = os.cpu_count() or 1
    others = busy_cores(window)
    return cores if others is None else max(1, cores - int(round(others)))


def use_free_cores(window: float = 0.2) -> int:
    """Lower torch's intra-op threads to the cores other processes leave free (never raise
    them); returns the count. Call it once when a process starts (the scripts and the test
    suite do), not in the middle of a run: torch's CPU reductions split their work by thread,
    so their float rounding, and hence a resumed run's bits, can depend on the count.

    Why: every parallel torch operation and the fused kernel end at a barrier that waits for
    all their threads. When another process holds a core, the thread that shares it runs late
    and each operation waits: on the 2-core machine with a training run on the other core, a
    784 -> 10 VSML forward step took 7.4-8.6 ms on 2 threads and 2.8-3.3 ms on 1 (fused kernel).
    """
    chosen = max(1, min(torch.get_num_threads(), free_cores(window)))
    torch.set_num_threads(chosen)
    return chosen
