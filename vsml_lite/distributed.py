"""Several processes on one run, under ``torchrun``: gloo on CPUs, NCCL on GPUs.

Chapter 5 splits a meta-training batch of episodes over the processes and sums their
meta-gradients (:func:`all_reduce_gradients`); Chapter 6 spreads a CMA-ES population over
them. Without an initialised process group every function here is the single-process case.

Example::

    torchrun --nproc_per_node 2 scripts/train_meta_learning.py --preset cpu --device cpu
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterable, Iterator, Tuple

import torch


def distributed_context() -> Tuple[int, int]:
    """``(rank, world_size)``: from an initialised default process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed_from_env() -> bool:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), initialise the default
    process group (gloo on the CPU, NCCL on GPUs); returns whether it did."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


@contextlib.contextmanager
def process_group_from_env() -> Iterator[Tuple[int, int]]:
    """A script's whole run under ``torchrun``: :func:`init_distributed_from_env` on entry,
    yielding ``(rank, world_size)``, and the default process group destroyed on exit, also
    when the block raises. Outside ``torchrun`` it only yields ``(0, 1)``.

    The group must not outlive the script: gloo's worker threads left running at interpreter
    shutdown can abort the process (SIGABRT, "terminate called without an active exception";
    pytorch/pytorch#190489), which fails a run that had finished its work.
    """
    import torch.distributed as dist

    started = init_distributed_from_env()
    try:
        yield distributed_context()
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


def shard(n: int) -> slice:
    """This process's contiguous share of ``n`` items (the first ``n % world`` processes get
    one more)."""
    rank, world = distributed_context()
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return slice(lo, lo + base + (rank < extra))


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the processes, in place (on the process group's device: NCCL needs
    CUDA tensors, gloo takes CPU ones); returns it. A no-op for one process."""
    import torch.distributed as dist

    _, world = distributed_context()
    if world == 1:
        return tensor
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    moved = tensor.to(device)
    dist.all_reduce(moved, op=dist.ReduceOp.SUM)
    if moved is not tensor:
        tensor.copy_(moved)
    return tensor


def all_reduce_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Sum the gradients of ``parameters`` over the processes (one flat buffer, one
    all-reduce): data parallelism by hand, what ``DistributedDataParallel`` does in buckets."""
    params = [p for p in parameters if p.grad is not None]
    _, world = distributed_context()
    if world == 1 or not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    all_reduce_sum(flat)
    start = 0
    for p in params:
        p.grad.copy_(flat[start : start + p.numel()].view_as(p.grad))
        start += p.numel()
