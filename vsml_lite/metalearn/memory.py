"""Peak memory of the meta-gradient, with and without gradient checkpointing over time,
measured in a fresh process so that the peak is the computation's own. Chapter 5.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Dict, Optional

import torch
from torch import nn

from ..config import Config
from ..data import NUM_CLASSES
from ..device import get_device, make_generator
from .episodes import unroll
from .learners import build_learner


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process so far: ``torch.cuda.max_memory_allocated`` on a GPU, the
    peak resident set size (all of the process, Python and torch included) on the CPU.

    On Linux the CPU peak is ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s
    ``ru_maxrss`` starts a child process at its parent's size (a probe started by a 1.3 GB
    training process read 0 MB of growth), while ``VmHWM`` starts afresh at ``exec``."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2 ** 10  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10  # Linux: KiB


def reset_peak_memory(device: torch.device) -> bool:
    """Start :func:`peak_memory_mb` afresh from what the process holds now, so that the next
    peak is one computation's (e.g. one model's meta-training), not the process's so far.
    CUDA: ``torch.cuda.reset_peak_memory_stats``; Linux: writing ``5`` to
    ``/proc/self/clear_refs`` resets ``VmHWM``. Returns ``False`` where neither is possible
    (the peak then stays the process's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


#: Allocations above this many bytes get their own memory mapping in the probe (see
#: :func:`meta_gradient_memory`); 64 KiB is well below one step's activations.
MMAP_THRESHOLD = 65536


def meta_gradient_memory(cfg: Config, model: str = "vsml", chunk: Optional[int] = None) -> Dict[str, float]:
    """Peak memory and time of one meta-gradient (one ``meta_batch`` of episodes, forward and
    backward) at the sizes of ``cfg``, measured in a fresh subprocess so that the peak is this
    computation's own. ``chunk`` overrides ``checkpoint_chunk`` (0: no checkpointing).

    Returns ``{"chunk", "peak_mb", "seconds", "device"}``: the growth of peak memory over the
    process's peak before the unroll (peak RSS on the CPU, ``max_memory_allocated`` on a GPU).
    Inputs are random: memory does not depend on the pixels, and the probe loads no dataset.
    """
    import json
    import subprocess
    import sys

    chunk = cfg.meta_learning.checkpoint_chunk if chunk is None else chunk
    cfg = cfg.override({"meta_learning.checkpoint_chunk": chunk})
    code = ("import json, sys, vsml_lite.metalearn.memory as memory, vsml_lite as vl; "
            "cfg = vl.Config.from_dict(json.loads(sys.argv[1])); "
            "print(json.dumps(memory.run_probe(cfg, sys.argv[2])))")
    # glibc raises its mmap threshold after large frees and then serves big tensors from a heap
    # it does not give back, so the peak RSS would depend on allocation history; a fixed
    # threshold keeps every large tensor in its own mapping, returned when it is freed.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cfg.to_dict()), model],
                         capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"memory probe failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_probe(cfg: Config, model: str) -> Dict[str, float]:
    """Body of :func:`meta_gradient_memory`, run in the subprocess."""
    m = cfg.meta_learning
    device = get_device(cfg.device)
    gen = make_generator(cfg.seed)
    learner = build_learner(cfg, model, gen)
    images = torch.randn(m.episode_length, m.meta_batch, m.input_side ** 2, generator=gen).to(device)
    labels = torch.randint(NUM_CLASSES, (m.episode_length, m.meta_batch), generator=gen).to(device)
    state = learner.initial_state(m.meta_batch, generator=gen)
    # Warm-up on two steps: compiles the fused kernel, allocates what every run needs and, with
    # checkpointing, goes through torch.utils.checkpoint once (its first call imports modules
    # worth about 180 MB of resident memory, which are not the meta-gradient's).
    logits, _, _ = unroll(learner, images[:2], labels[:2], state, m.state_clip, 1 if m.checkpoint_chunk else 0)
    logits.sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / 2 ** 20
    else:
        before = peak_memory_mb(device)
    start = time.perf_counter()
    logits, _, _ = unroll(learner, images, labels, state, m.state_clip, m.checkpoint_chunk)
    nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES), labels.reshape(-1)).backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"chunk": m.checkpoint_chunk, "peak_mb": round(peak_memory_mb(device) - before, 1),
            "seconds": round(seconds, 3), "device": str(device)}
