"""Learning algorithm cloning, part 1: neural forward computation (Section 3.2, Eq. 13,
Appendix C, Table 1). Chapter 3 of the book.

A single sub-LSTM of the VSML network is optimised so that, holding a weight ``w`` and a bias
``b`` in its state and receiving an input ``x`` in its forward message (as every sub-LSTM
of row ``x``'s input neuron does, Section 3.1), its forward message computes

    y = tanh(x) · w + b                                   (Eq. 13, with the bias extension)

The LSTM's hidden state is bounded in (-1, 1), so (Appendix C) ``w`` and ``b`` are stored
divided by :data:`OUTPUT_SCALE` = 20 and the message is read multiplied by it.

The sub-LSTM is the package's :class:`~vsml_lite.network.SubLSTM` run by
:func:`~vsml_lite.network.dense_ticks` on a 1 × 1 grid per example, so what is cloned here is
exactly what the stacked network computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from . import compiled, training
from .artifacts import live_path, save_artifact
from .config import Config
from .device import get_device, make_generator, to_device
from .network import INPUT_SLOT, OUTPUT_SLOT, LayerState, SubLSTM, dense_ticks

#: Appendix C: the target is scaled by 20 and w, b are stored scaled down by 20, so that
#: weights and biases of magnitude up to 20 fit in a state bounded by 1.
OUTPUT_SCALE = 20.0
#: State slots (of both h and c) that hold the weight and the bias, divided by OUTPUT_SCALE.
WEIGHT_SLOT, BIAS_SLOT = 0, 1
#: Name of the artifact kind (``vsml_lite/pretrained/forward_cloning_<preset>``).
KIND = "forward_cloning"


def initial_cell_state(w: torch.Tensor, b: torch.Tensor, hidden_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(h, c)`` of shape ``[n, 1, 1, H]`` that hold ``w`` and ``b`` (each ``[n]``).

    Slot :data:`WEIGHT_SLOT` of both ``h`` and ``c`` holds ``w / 20`` and slot
    :data:`BIAS_SLOT` holds ``b / 20``; the rest is 0. The paper keeps ``w`` in ``h_0``
    (Section 3.2): in ``h`` it reaches the gates, whose products (Eq. 6) make the
    multiplication ``tanh(x) · w`` possible in one tick. The LSTM's state also has the cell
    vector ``c``, which carries values from tick to tick; the weight goes there too.
    """
    n = w.shape[0]
    c = torch.zeros(n, 1, 1, hidden_size, dtype=w.dtype, device=w.device)
    c[:, 0, 0, WEIGHT_SLOT] = w / OUTPUT_SCALE
    c[:, 0, 0, BIAS_SLOT] = b / OUTPUT_SCALE
    return c.clone(), c


def predict(lstm: SubLSTM, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, ticks: int = 1) -> torch.Tensor:
    """What the sub-LSTM computes for inputs ``x`` and stored ``w``, ``b`` (all ``[n]``).

    ``x`` arrives in slot :data:`~vsml_lite.network.INPUT_SLOT` of the forward message; the
    result is slot :data:`~vsml_lite.network.OUTPUT_SLOT` of the forward message after
    ``ticks`` LSTM ticks, times :data:`OUTPUT_SCALE`. Returns ``[n]``.
    """
    if not (x.shape == w.shape == b.shape) or x.dim() != 1:
        raise ValueError(f"x, w, b must be 1-D of equal length, got {list(x.shape)}, {list(w.shape)}, {list(b.shape)}")
    n, M = x.shape[0], lstm.msg_size
    h, c = initial_cell_state(w, b, lstm.hidden_size)
    fwd_in = torch.zeros(n, 1, M, dtype=x.dtype, device=x.device)
    fwd_in[:, 0, INPUT_SLOT] = x
    bwd_in = torch.zeros(n, 1, M, dtype=x.dtype, device=x.device)
    _, _, fwd_out, _ = dense_ticks(lstm, LayerState(h, c, fwd_in, bwd_in), ticks)
    return OUTPUT_SCALE * fwd_out[:, 0, OUTPUT_SLOT]


def target(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The neural forward computation to clone: ``tanh(x) · w + b`` (Eq. 13 with a bias)."""
    return torch.tanh(x) * w + b


def sample_batch(batch: int, std: float, param_range: float, gen: torch.Generator, device=None):
    """Random ``x ~ N(0, std²)`` (Table 1) and ``w, b ~ U(-r, r)``, each ``[batch]``, drawn on
    the CPU from ``gen`` (so a seed gives the same data on any device)."""
    x = torch.randn(batch, generator=gen) * std
    w = (torch.rand(batch, generator=gen) * 2 - 1) * param_range
    b = (torch.rand(batch, generator=gen) * 2 - 1) * param_range
    return tuple(to_device(t, device) for t in (x, w, b))


def evaluation_grid(cfg: Config, bias: float = 0.0, x_max: Optional[float] = None):
    """The fixed ``(x, w)`` grid of the results table and Figure 4: ``x`` over ±3 input std,
    ``w`` over the training range; returns ``x [gx], w [gw]`` and flattened ``X, Wg, Bg``."""
    f = cfg.forward_cloning
    x_max = 3 * cfg.data.random_std if x_max is None else x_max
    xs = torch.linspace(-x_max, x_max, f.grid_x)
    ws = torch.linspace(-f.param_range, f.param_range, f.grid_w)
    X, Wg = torch.meshgrid(xs, ws, indexing="ij")  # [gx, gw]
    return xs, ws, X.reshape(-1), Wg.reshape(-1), torch.full_like(X.reshape(-1), bias)


@torch.no_grad()
def grid_predictions(lstm: SubLSTM, cfg: Config, bias: float = 0.0, x_max: Optional[float] = None):
    """:func:`predict` and :func:`target` over the evaluation grid at one bias.

    Returns:
        ``xs [gx]``, ``ws [gw]``, prediction ``[gx, gw]`` and target ``[gx, gw]`` (CPU).
    """
    xs, ws, X, Wg, Bg = evaluation_grid(cfg, bias, x_max)
    p = next(lstm.parameters())
    y = predict(lstm, *(t.to(p.device, p.dtype) for t in (X, Wg, Bg)), cfg.forward_cloning.ticks).cpu()
    shape = (len(xs), len(ws))
    return xs, ws, y.reshape(shape), target(X, Wg, Bg).reshape(shape)


def error_metrics(lstm: SubLSTM, cfg: Config, biases=(-1.0, 0.0, 1.0)) -> Dict[str, float]:
    """Mean and max absolute error of :func:`predict` against :func:`target` over the fixed
    evaluation grid, for each bias in ``biases``, plus the mean ``|target|`` for scale."""
    errs, mags = [], []
    for bias in biases:
        _, _, y, t = grid_predictions(lstm, cfg, bias)
        errs.append((y - t).abs().reshape(-1))
        mags.append(t.abs().reshape(-1))
    e, m = torch.cat(errs), torch.cat(mags)
    return {"mean_abs_error": e.mean().item(), "max_abs_error": e.max().item(),
            "mean_abs_target": m.mean().item(), "grid_points": e.numel(), "biases": list(biases)}


def new_sub_lstm(cfg: Config, seed: Optional[int] = None) -> SubLSTM:
    """A freshly initialised sub-LSTM with the forward cloning sizes (Table 1: cell size 32)."""
    f = cfg.forward_cloning
    gen = make_generator(cfg.seed if seed is None else seed)
    return SubLSTM(f.hidden_size, f.msg_size, generator=gen)


@dataclass
class TrainResult:
    """What :func:`train_forward_cloning` returns: the trained sub-LSTM and its history."""

    lstm: SubLSTM
    steps: List[int] = field(default_factory=list)
    losses: List[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0
    #: whether all iterations ran (``False`` when a deadline stopped the run, checkpointed)
    finished: bool = True
    #: the code versions that ran it (a run resumed across sessions may have several)
    code_versions: List[str] = field(default_factory=list)


class ForwardCloningTask:
    """One Adam step on Eq. 13 per iteration: the forward-cloning run as a
    :class:`~vsml_lite.training.Task`. Fresh random ``(x, w, b)`` every iteration from a
    generator seeded by ``cfg.seed + 1`` (the data stream; distinct from the init stream)."""

    name = "forward cloning"

    def __init__(self, cfg: Config) -> None:
        f = self.settings = cfg.forward_cloning
        self.cfg, self.device = cfg, get_device(cfg.device)
        self.total, self.log_every, self.checkpoint_every = f.iterations, f.log_every, f.checkpoint_every
        self.lstm = new_sub_lstm(cfg).to(self.device)
        self.opt = torch.optim.Adam(self.lstm.parameters(), lr=f.lr, fused=self.device.type == "cuda")
        self.gen = make_generator(cfg.seed + 1)
        self.loss = compiled.Step(self.loss_eager, compiled.resolve(cfg.compile, self.device), self.name)

    def loss_eager(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The Smooth L1 loss of Eq. 13 on one batch (what :attr:`loss` compiles)."""
        return nn.functional.smooth_l1_loss(predict(self.lstm, x, w, b, self.settings.ticks), target(x, w, b))

    def step(self, iteration: int) -> Dict[str, torch.Tensor]:
        f = self.settings
        x, w, b = sample_batch(f.batch_size, self.cfg.data.random_std, f.param_range, self.gen, self.device)
        compiled.mark_step_begin(self.device)
        loss = self.loss(x, w, b)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    def state_dict(self) -> Dict[str, object]:
        return {"lstm": self.lstm.state_dict(), "optimizer": self.opt.state_dict(), "generator": self.gen.get_state()}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.lstm.load_state_dict(state["lstm"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])


def train_forward_cloning(
    cfg: Config,
    checkpoint: Union[str, Path, None] = None,
    progress: bool = True,
    deadline: Optional[float] = None,
) -> TrainResult:
    """Optimise a sub-LSTM for Eq. 13 with the settings of ``cfg.forward_cloning``.

    Adam at the Table 1 learning rate on the Smooth L1 loss between the scaled message and the
    target (:class:`ForwardCloningTask`), run by :func:`vsml_lite.training.run`.

    Args:
        cfg: config; ``cfg.forward_cloning`` sets batch, iterations, learning rate, sizes.
        checkpoint: file for resumable training. When it exists the run continues from it (same
            random stream, so the result equals an uninterrupted run); it is rewritten every
            ``checkpoint_every`` iterations and on Ctrl-C / SIGTERM before the run stops.
        progress: show a tqdm progress bar.
        deadline: stop (checkpointed) at this ``time.monotonic()``; see ``TrainResult.finished``.
    """
    task = ForwardCloningTask(cfg)
    out = training.run(task, checkpoint, training.config_guard(cfg, ("forward_cloning", "data")), progress, deadline)
    return TrainResult(lstm=task.lstm, steps=out.history["iteration"], losses=out.history.get("loss", []),
                       seconds=out.seconds, resumed_from=out.resumed_from, finished=out.finished,
                       code_versions=out.code_versions)


def save_forward_clone(path: Union[str, Path], cfg: Config, result: TrainResult) -> Path:
    """Save a trained clone as an artifact with its config, seed, metrics and loss curve."""
    untrained = new_sub_lstm(cfg)
    lstm_cpu = result.lstm.to("cpu")
    meta = {
        "kind": KIND, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
        "metrics": {"trained": error_metrics(lstm_cpu, cfg), "untrained": error_metrics(untrained, cfg),
                    "train_seconds": round(result.seconds, 1),
                    "device": str(get_device(cfg.device))},
        "curves": {"steps": result.steps, "loss": result.losses},
        "code_versions": result.code_versions,
    }
    return save_artifact(path, {"lstm": lstm_cpu.state_dict()}, meta)


def train_and_save(cfg: Config, out: Union[str, Path, None] = None, progress: bool = True,
                   checkpoint: Union[str, Path, None] = None, deadline: Optional[float] = None) -> Optional[Path]:
    """Train a forward clone resumably and save it as an artifact; returns its path.

    ``out`` defaults to :func:`vsml_lite.artifacts.live_path`; the checkpoint (default
    ``<out>.ckpt``) lets an interrupted run resume and is removed once the artifact is
    written. With a ``deadline`` (``time.monotonic()``) the run may stop early, checkpointed;
    then nothing is written and ``None`` is returned.
    """
    out = Path(out) if out is not None else live_path(KIND, cfg.preset)
    ckpt = Path(checkpoint) if checkpoint is not None else out.with_suffix(".ckpt")
    result = train_forward_cloning(cfg, checkpoint=ckpt, progress=progress, deadline=deadline)
    if not result.finished:
        return None
    path = save_forward_clone(out, cfg, result)
    ckpt.unlink(missing_ok=True)
    return path


def load_forward_clone(record) -> SubLSTM:
    """The trained :class:`SubLSTM` of a loaded artifact (sizes from the artifact's config)."""
    f = record.expect(KIND).meta["config"]["forward_cloning"]
    lstm = SubLSTM(f["hidden_size"], f["msg_size"])
    lstm.load_state_dict(record.tensors["lstm"])
    return lstm
