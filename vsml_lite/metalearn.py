"""Meta-learning a learning algorithm from scratch (Section 3.3, Figure 6). Chapter 4 of the book.

A learner is anything with ``initial_state(batch, generator)`` and
``step(state, x, error, state_clip) -> (state, y)``: the VSML network
(:class:`~vsml_lite.network.VSMLNetwork`) or the Meta RNN baseline (:class:`MetaRNN`). An
*episode* runs it online: at step ``t`` it receives the image ``x_t`` and the error
``e_{t-1} = softmax(y_{t-1}) - onehot(label_{t-1})`` of its previous prediction, and predicts
``y_t``. Its state V_L starts at random; V_M is shared by every episode. Meta-training
(Section 3.3) minimises the episode's mean cross-entropy

    L(V_M) = E_episodes [ (1/T) Σ_t CE(y_t, label_t) ]

by Adam on V_M, differentiating through all ``T`` steps. At meta-test time no gradient is
computed anywhere: the learner just runs forward.

Memory: the backward pass through ``T`` steps needs the activations of every step.
:func:`unroll` bounds that with gradient checkpointing over chunks of ``checkpoint_chunk``
steps: only the state at chunk boundaries is kept, and each chunk is recomputed in the
backward pass (``O(T / K + K)`` steps of activations instead of ``O(T)``, at the cost of one
extra forward pass).

Baselines, on exactly the same data streams (:func:`test_streams`): online backpropagation
with Adam on a linear model and on a one-hidden-layer network (:func:`online_backprop`), with
the learning rate chosen on MNIST training streams (:func:`choose_learning_rate`).
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from .artifacts import live_path, load_artifact, load_checkpoint, save_artifact, save_checkpoint
from .cloning import _StopRequest
from .config import Config
from .data import NUM_CLASSES, OnlineStream, TensorData, downsample_dataset, load_dataset
from .device import get_device, make_generator
from .network import LayerState, VSMLNetwork, cross_entropy_error

#: Name of the artifact kind (``vsml_lite/pretrained/meta_learning_<preset>``).
KIND = "meta_learning"
#: The meta-learned models, in the order the chapter shows them.
MODELS = ("vsml", "meta_rnn")
#: Online-Adam baselines: name -> hidden units (0: linear model; None: ``adam_hidden``).
BASELINES = {"adam_linear": 0, "adam_mlp": None}
#: Display names.
LABELS = {"vsml": "VSML (VS Meta RNN)", "meta_rnn": "Meta RNN (one LSTM)",
          "adam_linear": "online Adam, linear", "adam_mlp": "online Adam, 1 hidden layer"}
#: Datasets of the meta-test: MNIST (the meta-training distribution) and Fashion-MNIST (unseen).
TEST_DATASETS = ("mnist", "fashion_mnist")
#: Offset added to a stream's index to get its seed: meta-test streams never share a seed
#: with the learning-rate search's streams (which use 0, 1, ...).
TEST_STREAM_SEED = 1000
#: Figure 6's claims are about the first 200 steps: the paper's meta-training episode length.
#: Every preset judges them there (or at ``test_steps`` when that is shorter), whatever its own
#: episode length, and online Adam's learning rate is chosen for the same horizon.
CLAIM_STEPS = 200


#: Accuracy within this margin of chance (10%) counts as "has not learned" in Chapter 4's prose.
CHANCE_MARGIN = 0.05


def claim_steps(cfg: Config) -> int:
    """The horizon of the claims: :data:`CLAIM_STEPS`, or ``test_steps`` if shorter."""
    return min(CLAIM_STEPS, cfg.meta_learning.test_steps)


# ----------------------------------------------------------------------------------------
# The Meta RNN baseline (Hochreiter et al., 2001)
# ----------------------------------------------------------------------------------------

class MetaRNN(nn.Module):
    """One LSTM that reads ``[x_t, e_{t-1}]`` and outputs ``y_t`` through a linear readout:
    the standard Meta RNN. Its V_L is the LSTM's ``(h, c)`` (``2 · hidden`` numbers); its
    V_M, the LSTM and readout weights, grows with ``hidden²`` and with the input size.

    Args:
        input_size: pixels per image.
        hidden_size: LSTM cell size.
        micro_ticks: LSTM ticks per datum (as in the VSML network).
        output_bound: outputs pass through ``bound · tanh(y / bound)``; ``None`` for raw.
        init_rand_fraction: fraction of the fresh cell vector drawn at random (std
            ``1/sqrt(hidden)``), as :meth:`VSMLNetwork.initial_state` does.
        num_classes: output units.
        generator: seeds the meta variables.
    """

    def __init__(self, input_size: int, hidden_size: int = 128, micro_ticks: int = 2,
                 output_bound: Optional[float] = 100.0, init_rand_fraction: float = 0.5,
                 num_classes: int = NUM_CLASSES, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if min(input_size, hidden_size, micro_ticks, num_classes) < 1:
            raise ValueError(f"need positive sizes, got input {input_size}, hidden {hidden_size}, "
                             f"ticks {micro_ticks}, classes {num_classes}")
        self.input_size, self.num_classes = input_size, num_classes
        self.hidden_size, self.micro_ticks = hidden_size, micro_ticks
        self.output_bound, self.init_rand_fraction = output_bound, init_rand_fraction
        self.cell = nn.LSTMCell(input_size + num_classes, hidden_size)
        self.readout = nn.Linear(hidden_size, num_classes)
        with torch.no_grad():  # PyTorch's default init, drawn from our generator
            for p in self.parameters():
                bound = 1.0 / math.sqrt(p.shape[-1] if p.dim() > 1 else hidden_size)
                p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)

    def num_meta_variables(self) -> int:
        """|V_M|."""
        return sum(p.numel() for p in self.parameters())

    def num_learned_variables(self) -> int:
        """|V_L|: the LSTM's hidden and cell vectors."""
        return 2 * self.hidden_size

    def initial_state(self, batch: int = 1, generator: Optional[torch.Generator] = None):
        """``(h, c)``, each ``[batch, hidden]``: ``h = 0``, part of ``c`` random."""
        p = self.readout.weight
        H, k = self.hidden_size, int(self.hidden_size * self.init_rand_fraction)
        c = torch.zeros(batch, H)
        std = 1.0 / math.sqrt(H)
        nn.init.trunc_normal_(c[:, :k], std=std, a=-2 * std, b=2 * std, generator=generator)
        return torch.zeros(batch, H, dtype=p.dtype, device=p.device), c.to(p.device, p.dtype)

    def step(self, state, x: torch.Tensor, error: torch.Tensor, state_clip: Optional[float] = None):
        """Feed ``x [n, input_size]`` and ``error [n, classes]``; returns ``(state, y [n, classes])``."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x must have shape [n, {self.input_size}], got {list(x.shape)}")
        if error.shape != (x.shape[0], self.num_classes):
            raise ValueError(f"error must have shape [{x.shape[0]}, {self.num_classes}], got {list(error.shape)}")
        h, c = state
        inputs = torch.cat([x, error], dim=-1)
        for _ in range(self.micro_ticks):
            h, c = self.cell(inputs, (h, c))
            if state_clip is not None:
                c = c.clamp(-state_clip, state_clip)
        y = self.readout(h)
        if self.output_bound is not None:
            y = self.output_bound * torch.tanh(y / self.output_bound)
        return (h, c), y


def build_learner(cfg: Config, model: str, generator: Optional[torch.Generator] = None) -> nn.Module:
    """The learner ``model`` (``"vsml"`` or ``"meta_rnn"``) at the sizes of ``cfg``, on
    ``cfg.device``. The VSML network takes its sub-LSTM settings from ``cfg.network``."""
    m, n = cfg.meta_learning, cfg.network
    inputs = m.input_side ** 2
    if model == "vsml":
        net = VSMLNetwork([inputs, NUM_CLASSES], hidden_size=n.hidden_size, msg_size=n.msg_size,
                          micro_ticks=n.micro_ticks, reduce=n.reduce, output_bound=n.output_bound,
                          init_rand_fraction=n.init_rand_fraction, position_inputs=n.position_inputs,
                          generator=generator)
    elif model == "meta_rnn":
        net = MetaRNN(inputs, m.meta_rnn_hidden, micro_ticks=n.micro_ticks, output_bound=n.output_bound,
                      init_rand_fraction=n.init_rand_fraction, generator=generator)
    else:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    return net.to(get_device(cfg.device))


# ----------------------------------------------------------------------------------------
# Episodes
# ----------------------------------------------------------------------------------------

def _flat(state) -> List[torch.Tensor]:
    """A learner state as a flat list of tensors (what gradient checkpointing passes along)."""
    if isinstance(state, list):
        return [t for s in state for t in (s.h, s.c, s.fwd_in, s.bwd_in)]
    return list(state)


def _unflat(like, tensors: Sequence[torch.Tensor]):
    """Inverse of :func:`_flat`, shaped like ``like``."""
    if isinstance(like, list):
        return [LayerState(*tensors[4 * i : 4 * i + 4]) for i in range(len(like))]
    return tuple(tensors)


def unroll(learner: nn.Module, images: torch.Tensor, labels: torch.Tensor, state,
           state_clip: Optional[float] = None, chunk: int = 0, error: Optional[torch.Tensor] = None):
    """Run ``learner`` online over an episode: step ``t`` sees ``images[t]`` and the error of
    step ``t - 1`` (zeros at ``t = 0``).

    Args:
        images: ``[T, n, A]``; labels: ``[T, n]`` (the labels only enter through the errors).
        state: the learner's state for ``n`` copies (from ``initial_state``).
        chunk: when gradients are enabled and ``chunk > 0``, checkpoint every ``chunk`` steps
            (see the module docstring); the result is the same.
        error: the error entering step 0 (default zeros).

    Returns:
        ``(logits [T, n, C], final state, final error [n, C])``.
    """
    T, n = labels.shape
    if images.dim() != 3 or images.shape[:2] != (T, n):
        raise ValueError(f"images must have shape [T, n, A] = [{T}, {n}, A], got {list(images.shape)}")
    if error is None:
        error = images.new_zeros(n, NUM_CLASSES)

    def run(lo: int, hi: int, err: torch.Tensor, *flat: torch.Tensor):
        st, ys = _unflat(state, flat), []
        for t in range(lo, hi):
            st, y = learner.step(st, images[t], err, state_clip=state_clip)
            err = cross_entropy_error(y, labels[t])  # fed back at the next step
            ys.append(y)
        return (torch.stack(ys), err, *_flat(st))

    span = chunk if chunk and chunk > 0 else T
    flat, logits = _flat(state), []
    for lo in range(0, T, span):
        hi = min(T, lo + span)
        if span < T and torch.is_grad_enabled():
            out = _checkpoint(run, lo, hi, error, *flat, use_reentrant=False)
        else:
            out = run(lo, hi, error, *flat)
        logits.append(out[0])
        error, flat = out[1], list(out[2:])
    return torch.cat(logits), _unflat(state, flat), error


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
    return data.images[idx.to(dev)].transpose(0, 1), labels.to(dev).transpose(0, 1)


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
    return _scores(logits, labels)


def _scores(logits: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
    T, S = labels.shape
    loss = nn.functional.cross_entropy(logits.reshape(T * S, -1), labels.reshape(-1), reduction="none")
    correct = (logits.argmax(-1) == labels).cpu()
    return {"correct": correct, "loss": loss.reshape(T, S).cpu(), "accuracy": cumulative_accuracy(correct)}


# ----------------------------------------------------------------------------------------
# Baselines: online backpropagation with Adam
# ----------------------------------------------------------------------------------------

def online_backprop(images: torch.Tensor, labels: torch.Tensor, hidden: int, lr: float,
                    seed: int) -> Dict[str, torch.Tensor]:
    """Online backpropagation with Adam, one example per step, on every stream at once.

    Each stream ``s`` has its own network (``hidden = 0``: linear, ``x W + b``; else
    ``tanh(x W1 + b1) W2 + b2``), initialised as ``nn.Linear`` does (U(±1/sqrt(fan_in)))
    from a generator seeded with ``seed``. At step ``t`` it predicts ``images[t]``, then takes
    one Adam step on that example's cross-entropy. Adam acts elementwise, so summing the
    streams' losses updates each stream's network with its own gradient only.

    Args:
        images: ``[T, S, A]``; labels: ``[T, S]``.

    Returns:
        As :func:`meta_test`, plus ``num_parameters`` (one network).
    """
    T, S, A = images.shape
    gen = make_generator(seed)
    sizes = [A, hidden, NUM_CLASSES] if hidden else [A, NUM_CLASSES]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        for shape in ((S, fan_in, fan_out), (S, 1, fan_out)):
            params.append((torch.rand(shape, generator=gen) * 2 * bound - bound).to(images.device).requires_grad_())
    opt = torch.optim.Adam(params, lr=lr)
    logits_all = []
    for t in range(T):
        h = images[t][:, None, :]  # [S, 1, A]
        for k in range(0, len(params), 2):
            h = h @ params[k] + params[k + 1]
            if k + 2 < len(params):
                h = torch.tanh(h)
        logits = h[:, 0]  # [S, C]
        logits_all.append(logits.detach())
        loss = nn.functional.cross_entropy(logits, labels[t], reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = _scores(torch.stack(logits_all), labels)
    out["num_parameters"] = sum(p[0].numel() for p in params)
    return out


def choose_learning_rate(cfg: Config, train: TensorData, hidden: int) -> Dict[str, object]:
    """Pick online Adam's learning rate on MNIST *training* streams: the rate in
    ``cfg.meta_learning.adam_lrs`` with the best accuracy over the first :func:`claim_steps`
    steps, averaged over ``lr_search_seeds`` streams. Returns ``{"lr", "scores": {lr: acc}}``."""
    m = cfg.meta_learning
    images, labels = test_streams(train, range(m.lr_search_seeds), claim_steps(cfg))
    scores = {}
    for lr in m.adam_lrs:
        out = online_backprop(images, labels, hidden, lr, seed=cfg.seed)
        scores[lr] = out["accuracy"][-1].mean().item()
    return {"lr": max(scores, key=scores.get), "scores": scores}


# ----------------------------------------------------------------------------------------
# Meta-training
# ----------------------------------------------------------------------------------------

def load_split(cfg: Config, name: str, train: bool) -> TensorData:
    """MNIST or Fashion-MNIST at the chapter's input size, on ``cfg.device``."""
    data = load_dataset(name, train=train, root=cfg.data.root, download=cfg.data.download)
    return downsample_dataset(data, cfg.meta_learning.input_side).to(get_device(cfg.device))


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


@dataclass
class MetaTrainResult:
    """What :func:`meta_train` returns: the meta-trained learner and its history."""

    learner: nn.Module
    steps: List[int] = field(default_factory=list)
    losses: List[float] = field(default_factory=list)
    accuracies: List[float] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    resumed_from: int = 0


def meta_train(cfg: Config, model: str, checkpoint: Union[str, Path, None] = None,
               progress: bool = True, data: Optional[TensorData] = None) -> MetaTrainResult:
    """Meta-train ``model`` (``"vsml"`` or ``"meta_rnn"``) on MNIST training episodes.

    Every iteration draws ``meta_batch`` episodes (:func:`sample_episodes`) and fresh random
    initial states, unrolls the learner over them (:func:`unroll`, checkpointed in chunks),
    and takes one Adam step on V_M with the gradient of the mean cross-entropy, its norm
    clipped to ``grad_clip``. Both models get the same iterations, episodes and optimiser.

    Args:
        checkpoint: file for resumable training (rewritten every ``checkpoint_every``
            iterations and on Ctrl-C / SIGTERM); a resumed run equals an uninterrupted one.
        data: the MNIST training split at the chapter's input size (loaded when ``None``).
    """
    from tqdm.auto import tqdm

    m = cfg.meta_learning
    device = get_device(cfg.device)
    data = load_split(cfg, "mnist", train=True) if data is None else data
    learner = build_learner(cfg, model, make_generator(cfg.seed))
    opt = torch.optim.Adam(learner.parameters(), lr=m.lr)
    gen = make_generator(cfg.seed + 1)  # episodes and initial states
    result = MetaTrainResult(learner=learner)
    running = [0.0, 0.0]  # loss and accuracy summed since the last logged point
    state = load_checkpoint(checkpoint) if checkpoint is not None else None
    if state is not None:
        if state["config"] != cfg.to_dict() or state["model"] != model:
            raise ValueError(f"checkpoint {checkpoint} was made with another config or model; "
                             "delete it or use the config it records")
        learner.load_state_dict(state["learner"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        result.steps, result.losses, result.accuracies = state["steps"], state["losses"], state["accuracies"]
        result.seconds, result.resumed_from, running = state["seconds"], state["iteration"], state["running"]
        result.peak_memory_mb = state["peak_memory_mb"]

    def save(iteration: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": model, "learner": learner.state_dict(), "optimizer": opt.state_dict(),
                "generator": gen.get_state(), "iteration": iteration, "running": running,
                "steps": result.steps, "losses": result.losses, "accuracies": result.accuracies,
                "seconds": result.seconds, "peak_memory_mb": result.peak_memory_mb,
                "config": cfg.to_dict()})

    started = time.perf_counter()
    bar = tqdm(total=m.iterations, initial=result.resumed_from, disable=not progress,
               desc=f"meta-training {model}")
    with _StopRequest() as stop:
        for it in range(result.resumed_from, m.iterations):
            images, labels = sample_episodes(data, m.meta_batch, m.episode_length, gen, m.permute_labels)
            state0 = learner.initial_state(m.meta_batch, generator=gen)
            logits, _, _ = unroll(learner, images, labels, state0, m.state_clip, m.checkpoint_chunk)
            loss = nn.functional.cross_entropy(logits.reshape(-1, NUM_CLASSES), labels.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(learner.parameters(), m.grad_clip)
            opt.step()
            running[0] += loss.item()
            running[1] += (logits.argmax(-1) == labels).float().mean().item()
            done = it + 1
            if done % m.log_every == 0 or done == m.iterations:
                span = done % m.log_every or m.log_every
                result.steps.append(done)
                result.losses.append(running[0] / span)
                result.accuracies.append(running[1] / span)
                result.peak_memory_mb = max(result.peak_memory_mb, peak_memory_mb(device))
                bar.set_postfix(loss=f"{running[0] / span:.3f}", acc=f"{running[1] / span:.3f}",
                                peak_mb=f"{result.peak_memory_mb:.0f}")
                running = [0.0, 0.0]
            bar.update(1)
            if done % m.checkpoint_every == 0 or stop.requested:
                result.seconds += time.perf_counter() - started
                started = time.perf_counter()
                save(done)
            stop.stop_if_requested(f"meta-training {model}", done, checkpoint, bar)
    bar.close()
    result.seconds += time.perf_counter() - started
    result.peak_memory_mb = max(result.peak_memory_mb, peak_memory_mb(device))
    save(m.iterations)
    return result


# ----------------------------------------------------------------------------------------
# Memory of one meta-gradient, with and without checkpointing
# ----------------------------------------------------------------------------------------

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
    code = ("import json, sys, vsml_lite.metalearn as ml, vsml_lite as vl; "
            "cfg = vl.Config.from_dict(json.loads(sys.argv[1])); "
            "print(json.dumps(ml._probe(cfg, sys.argv[2])))")
    # glibc raises its mmap threshold after large frees and then serves big tensors from a heap
    # it does not give back, so the peak RSS would depend on allocation history; a fixed
    # threshold keeps every large tensor in its own mapping, returned when it is freed.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(cfg.to_dict()), model],
                         capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"memory probe failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _probe(cfg: Config, model: str) -> Dict[str, float]:
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


# ----------------------------------------------------------------------------------------
# Evaluation, artifact
# ----------------------------------------------------------------------------------------

def learned_variable_counts(learner: nn.Module) -> Dict[str, int]:
    """``{"V_M": |V_M|, "V_L": |V_L|}`` of a learner."""
    return {"V_M": learner.num_meta_variables(), "V_L": learner.num_learned_variables()}


def evaluate(cfg: Config, learners: Dict[str, nn.Module], progress: bool = True) -> Dict[str, object]:
    """Meta-test the learners and run the baselines on the same streams (Figure 6).

    Online Adam's learning rates are chosen first on MNIST training streams
    (:func:`choose_learning_rate`). Then, on ``test_seeds`` streams of ``test_steps`` examples
    of the MNIST and Fashion-MNIST test splits (:func:`test_streams`), every learner and
    baseline runs once. Labels are the datasets' own (no permutation).

    Returns ``{"curves": {"<model>/<dataset>": {"accuracy", "loss"}}, "lr_search": ...,
    "counts": {model: {"V_M", "V_L"}}, "seconds"}``.
    """
    from tqdm.auto import tqdm

    m = cfg.meta_learning
    start = time.perf_counter()
    train = load_split(cfg, "mnist", train=True)
    hidden = {name: (m.adam_hidden if h is None else h) for name, h in BASELINES.items()}
    lr_search = {name: choose_learning_rate(cfg, train, h) for name, h in hidden.items()}
    seeds = [TEST_STREAM_SEED + i for i in range(m.test_seeds)]
    curves, counts = {}, {k: learned_variable_counts(v) for k, v in learners.items()}
    jobs = [(ds, name) for ds in TEST_DATASETS for name in (*learners, *BASELINES)]
    bar = tqdm(jobs, disable=not progress, desc="meta-testing")
    streams = {}
    for ds, name in bar:
        bar.set_postfix(run=f"{name}/{ds}")
        if ds not in streams:
            streams = {ds: test_streams(load_split(cfg, ds, train=False), seeds, m.test_steps)}
        images, labels = streams[ds]
        if name in learners:
            out = meta_test(learners[name], images, labels, seed=cfg.seed + 2, state_clip=m.state_clip)
        else:
            out = online_backprop(images, labels, hidden[name], lr_search[name]["lr"], seed=cfg.seed + 2)
            counts[name] = {"V_M": 1, "V_L": out["num_parameters"]}
        curves[f"{name}/{ds}"] = {"accuracy": out["accuracy"], "loss": out["loss"]}
    return {"curves": curves, "lr_search": lr_search, "counts": counts,
            "seconds": round(time.perf_counter() - start, 1)}


#: The paper's Figure 6 in words (it gives no numbers): what the chapter checks.
CLAIMS = (
    "On MNIST test streams, VSML's accuracy over the first {T} steps beats online Adam's.",
    "On Fashion-MNIST, VSML still beats online Adam over the first {T} steps.",
    "The Meta RNN's drop from MNIST to Fashion-MNIST is larger than VSML's.",
)


def results_table(evaluation: Dict[str, object], cfg: Config) -> List[Dict[str, object]]:
    """One row per model: |V_M|, |V_L| and the accuracy over the first ``episode_length``,
    :func:`claim_steps` and ``test_steps`` steps on each dataset, as ``"mean ± std"`` over the streams, with
    the means as numbers in ``<dataset> @<steps>`` keys for the claims."""
    m = cfg.meta_learning
    rows = []
    for name in (*MODELS, *BASELINES):
        if f"{name}/mnist" not in evaluation["curves"]:
            continue
        row = {"model": LABELS[name], "|V_M|": evaluation["counts"][name]["V_M"],
               "|V_L|": evaluation["counts"][name]["V_L"]}
        for ds in TEST_DATASETS:
            acc = evaluation["curves"][f"{name}/{ds}"]["accuracy"]  # [T, S]
            for steps in sorted({min(m.episode_length, m.test_steps), claim_steps(cfg), m.test_steps}):
                a = acc[min(steps, acc.shape[0]) - 1]
                row[f"{ds} @{steps}"] = f"{100 * a.mean():.1f} ± {100 * a.std():.1f}%"
                row[f"_{ds}@{steps}"] = a.mean().item()
                row[f"_{ds}@{steps}_std"] = a.std().item()
        row["_name"] = name
        rows.append(row)
    return rows


def check_claims(rows: List[Dict[str, object]], cfg: Config) -> List[Dict[str, object]]:
    """The three claims of :data:`CLAIMS`, each with the numbers that decide it and
    ``holds``. Online Adam is the better of the two baselines on each dataset."""
    T = claim_steps(cfg)
    by = {r["_name"]: r for r in rows}
    out = []
    for ds, claim in (("mnist", CLAIMS[0]), ("fashion_mnist", CLAIMS[1])):
        adam = max(by[b][f"_{ds}@{T}"] for b in BASELINES)
        vsml = by["vsml"][f"_{ds}@{T}"]
        out.append({"claim": claim.format(T=T), "measured": f"VSML {100 * vsml:.1f}% vs best online Adam {100 * adam:.1f}%",
                    "holds": vsml > adam})
    drop = {k: by[k][f"_mnist@{T}"] - by[k][f"_fashion_mnist@{T}"] for k in MODELS}
    out.append({"claim": CLAIMS[2], "measured": f"Meta RNN drops {100 * drop['meta_rnn']:+.1f} points, "
                f"VSML {100 * drop['vsml']:+.1f} (first {T} steps)", "holds": drop["meta_rnn"] > drop["vsml"]})
    return out


def public_rows(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """The table rows without the helper keys (those starting with ``_``)."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def save_meta_learning(path: Union[str, Path], cfg: Config, results: Dict[str, MetaTrainResult],
                       evaluation: Dict[str, object], memory: Optional[Dict[str, object]] = None,
                       trained_by: Optional[str] = None) -> Path:
    """Save both meta-trained learners, the meta-test curves and a JSON record (config, seed,
    preset, code version, meta-training time and peak memory, learning-rate search, results
    table, claims). ``trained_by``: the code version that meta-trained the learners, when it
    is not the one evaluating them (:func:`reevaluate`)."""
    from .artifacts import code_version

    rows = results_table(evaluation, cfg)
    device = str(get_device(cfg.device))
    meta = {
        "code_version": trained_by or code_version(), "evaluation_code_version": code_version(),
        "kind": KIND, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
        "metrics": {
            "meta_training": {k: {"seconds": round(r.seconds, 1), "peak_memory_mb": round(r.peak_memory_mb, 1),
                                  "final_loss": r.losses[-1] if r.losses else None,
                                  "final_accuracy": r.accuracies[-1] if r.accuracies else None,
                                  **learned_variable_counts(r.learner)}
                              for k, r in results.items()},
            "device": device, "eval_seconds": evaluation["seconds"],
            "lr_search": {k: {"lr": v["lr"], "scores": {str(lr): s for lr, s in v["scores"].items()}}
                          for k, v in evaluation["lr_search"].items()},
            "results": rows, "claims": check_claims(rows, cfg), "memory": memory or {},
        },
        "curves": {k: {"steps": r.steps, "loss": r.losses, "accuracy": r.accuracies} for k, r in results.items()},
    }
    tensors = {"learners": {k: {n: p.detach().cpu() for n, p in r.learner.state_dict().items()}
                            for k, r in results.items()},
               "curves": {k: {n: v.to(torch.float32) for n, v in c.items()} for k, c in evaluation["curves"].items()}}
    return save_artifact(path, tensors, meta)


def train_and_save(cfg: Config, out: Union[str, Path, None] = None, progress: bool = True,
                   models: Sequence[str] = MODELS) -> Path:
    """Meta-train every model (resumably: ``<out>.<model>.ckpt``), evaluate, and save the
    artifact; returns its path. Checkpoints are removed once the artifact is written."""
    out = Path(out) if out is not None else live_path(KIND, cfg.preset)
    data = load_split(cfg, "mnist", train=True)
    results = {model: meta_train(cfg, model, checkpoint=out.with_suffix(f".{model}.ckpt"),
                                 progress=progress, data=data) for model in models}
    evaluation = evaluate(cfg, {k: r.learner.eval() for k, r in results.items()}, progress=progress)
    memory = {f"chunk_{c}": meta_gradient_memory(cfg, "vsml", c)
              for c in (0, cfg.meta_learning.checkpoint_chunk)}
    path = save_meta_learning(out, cfg, results, evaluation, memory)
    for model in models:
        out.with_suffix(f".{model}.ckpt").unlink(missing_ok=True)
    return path


#: Settings that shape meta-training; :func:`reevaluate` refuses a config that changes them.
TRAINING_FIELDS = ("input_side", "episode_length", "meta_batch", "iterations", "lr", "grad_clip",
                   "checkpoint_chunk", "permute_labels", "state_clip", "meta_rnn_hidden")


def reevaluate(cfg: Config, path: Union[str, Path], progress: bool = True) -> Path:
    """Meta-test the learners of an existing artifact again with the evaluation settings of
    ``cfg`` (baselines' learning rates, streams, seeds) and the current memory probe, and
    rewrite the artifact. The meta-trained V_M, their curves, times and the code version that
    trained them are kept; ``evaluation_code_version`` records the code evaluating them.

    Raises ``ValueError`` when ``cfg`` differs from the artifact in anything that shaped
    meta-training (the seed, ``cfg.network``, :data:`TRAINING_FIELDS`)."""
    record = load_artifact(path)
    old = Config.from_dict(record.meta["config"])
    changed = [f"meta_learning.{f}" for f in TRAINING_FIELDS
               if getattr(old.meta_learning, f) != getattr(cfg.meta_learning, f)]
    changed += ["seed"] * (old.seed != cfg.seed) + ["network"] * (old.network != cfg.network)
    if changed:
        raise ValueError(f"{path} was meta-trained with other {', '.join(changed)}; re-evaluating would "
                         "mislabel it; meta-train again instead")
    _, learners = load_learners(record)
    device = get_device(cfg.device)
    curves, trained = record.meta["curves"], record.meta["metrics"]["meta_training"]
    results = {k: MetaTrainResult(learner=v.to(device), steps=curves[k]["steps"], losses=curves[k]["loss"],
                                  accuracies=curves[k]["accuracy"], seconds=trained[k]["seconds"],
                                  peak_memory_mb=trained[k]["peak_memory_mb"])
               for k, v in learners.items()}
    evaluation = evaluate(cfg, learners, progress=progress)
    memory = {f"chunk_{c}": meta_gradient_memory(cfg, "vsml", c) for c in (0, cfg.meta_learning.checkpoint_chunk)}
    return save_meta_learning(path, cfg, results, evaluation, memory, trained_by=record.meta["code_version"])


def load_learners(record) -> Tuple[Config, Dict[str, nn.Module]]:
    """The config and meta-trained learners of a loaded artifact (on the CPU)."""
    cfg = Config.from_dict(record.meta["config"]).override({"device": "cpu"})
    learners = {}
    for name, state in record.tensors["learners"].items():
        learner = build_learner(cfg, name)
        learner.load_state_dict(state)
        learners[name] = learner.eval()
    return cfg, learners


def evaluation_from_record(record) -> Dict[str, object]:
    """The ``evaluation`` dict of :func:`evaluate` rebuilt from a loaded artifact."""
    m = record.meta["metrics"]
    counts = {r["_name"]: {"V_M": r["|V_M|"], "V_L": r["|V_L|"]} for r in m["results"]}
    lr_search = {k: {"lr": v["lr"], "scores": {float(lr): s for lr, s in v["scores"].items()}}
                 for k, v in m["lr_search"].items()}
    return {"curves": record.tensors["curves"], "lr_search": lr_search, "counts": counts,
            "seconds": m["eval_seconds"]}


# ----------------------------------------------------------------------------------------
# Inside the network: one meta-test episode, step by step
# ----------------------------------------------------------------------------------------

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
    error = images.new_zeros(1, NUM_CLASSES)
    cells, probs = [state[0].c[0, :, units].clone()], []
    for t in range(images.shape[0]):
        state, y = learner.step(state, images[t : t + 1], error, state_clip=state_clip)
        error = cross_entropy_error(y, labels[t : t + 1])
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
