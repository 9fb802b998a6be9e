"""The learners of Chapter 5: the VSML network (:class:`~vsml_lite.network.VSMLNetwork`) and
the Meta RNN baseline (Hochreiter et al., 2001). A learner is anything with
``initial_state(batch, generator)`` and ``step(state, x, error, state_clip) -> (state, y)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import nn

from ..config import Config
from ..data import NUM_CLASSES
from ..device import get_device
from ..network import VSMLNetwork, cross_entropy_error
from ..validate import check_state_clip

@dataclass(frozen=True)
class ModelSpec:
    """What distinguishes one meta-learned model from another.

    Args:
        architecture: ``"vsml"`` (:class:`~vsml_lite.network.VSMLNetwork`) or ``"meta_rnn"``
            (:class:`MetaRNN`).
        label_input: the learner also reads the previous step's label (one-hot), as the
            official code's Meta RNN does.
        fixed_labels: meta-trained on the datasets' own labels whatever
            ``meta_learning.permute_labels`` says (the official code does not permute, and the
            paper's Meta RNN overfits to exactly that mapping).
        layer_norm: a VSML network whose sub-LSTM normalises its messages (LayerNorm), as the
            official code's gradient-based configurations do.
    """

    architecture: str
    label_input: bool = False
    fixed_labels: bool = False
    layer_norm: bool = False


#: The meta-learned models, in the order the chapter shows them: the VSML network; the same
#: with LayerNorm on its messages (the official code's gradient-based setting; an ablation);
#: the Meta RNN as the paper's official code runs it (fixed labels, reading
#: ``[x, e, previous label]``); and the book's earlier Meta RNN (labels permuted per episode,
#: reading ``[x, e]``), kept as an ablation.
MODEL_SPECS: Dict[str, ModelSpec] = {
    "vsml": ModelSpec("vsml"),
    "vsml_layernorm": ModelSpec("vsml", layer_norm=True),
    "meta_rnn_fixed": ModelSpec("meta_rnn", label_input=True, fixed_labels=True),
    "meta_rnn": ModelSpec("meta_rnn"),
}
MODELS = tuple(MODEL_SPECS)
#: Models meta-trained on the datasets' own labels (:attr:`ModelSpec.fixed_labels`).
FIXED_LABEL_MODELS = tuple(name for name, spec in MODEL_SPECS.items() if spec.fixed_labels)


def model_spec(model: str) -> ModelSpec:
    """:data:`MODEL_SPECS` entry of ``model``; an unknown name raises ``ValueError`` listing the valid ones."""
    if model not in MODEL_SPECS:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    return MODEL_SPECS[model]


class MetaRNN(nn.Module):
    """One LSTM that reads ``[x_t, e_{t-1}]`` (or ``[x_t, e_{t-1}, onehot(label_{t-1})]``) and
    outputs ``y_t`` through a linear readout: the standard Meta RNN. Its V_L is the LSTM's
    ``(h, c)`` (``2 · hidden`` numbers); its V_M, the LSTM and readout weights, grows with
    ``hidden²`` and with the input size.

    Args:
        input_size: pixels per image.
        hidden_size: LSTM cell size.
        micro_ticks: LSTM ticks per datum (as in the VSML network).
        output_bound: outputs pass through ``bound · tanh(y / bound)``; ``None`` for raw.
        init_rand_fraction: fraction of the fresh cell vector drawn at random (std
            ``1/sqrt(hidden)``), as :meth:`VSMLNetwork.initial_state` does.
        num_classes: output units.
        label_input: also read the previous step's label (one-hot), as the official code's
            Meta RNN does (``models.py``, ``MetaRNN``); the feedback it gets is then
            ``[e, onehot(label)]`` (:meth:`feedback`).
        generator: seeds the meta variables.
    """

    def __init__(self, input_size: int, hidden_size: int = 128, micro_ticks: int = 2,
                 output_bound: Optional[float] = 100.0, init_rand_fraction: float = 0.5,
                 num_classes: int = NUM_CLASSES, label_input: bool = False,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if min(input_size, hidden_size, micro_ticks, num_classes) < 1:
            raise ValueError(f"need positive sizes, got input {input_size}, hidden {hidden_size}, "
                             f"ticks {micro_ticks}, classes {num_classes}")
        self.input_size, self.num_classes = input_size, num_classes
        self.hidden_size, self.micro_ticks = hidden_size, micro_ticks
        self.output_bound, self.init_rand_fraction = output_bound, init_rand_fraction
        self.label_input = label_input
        #: numbers fed back after each prediction: the error, and the label where read
        self.feedback_size = num_classes * (2 if label_input else 1)
        self.cell = nn.LSTMCell(input_size + self.feedback_size, hidden_size)
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

    def feedback(self, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What the learner reads at the next step about its prediction ``y [n, classes]`` of
        ``labels [n]``: the error ``softmax(y) - onehot(label)`` (Section 3.3), followed by
        ``onehot(label)`` when it reads labels. Shape ``[n, feedback_size]``."""
        error = cross_entropy_error(y, labels)
        if not self.label_input:
            return error
        return torch.cat([error, nn.functional.one_hot(labels, self.num_classes).to(y.dtype)], dim=-1)

    def step(self, state, x: torch.Tensor, error: torch.Tensor, state_clip: Optional[float] = None):
        """Feed ``x [n, input_size]`` and the feedback of the previous step ``error [n,
        feedback_size]`` (:meth:`feedback`; zeros at the first step); returns ``(state, y [n,
        classes])``."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x must have shape [n, {self.input_size}], got {list(x.shape)}")
        if error.shape != (x.shape[0], self.feedback_size):
            raise ValueError(f"error must have shape [{x.shape[0]}, {self.feedback_size}] (the error"
                             f"{' and the label' if self.label_input else ''}), got {list(error.shape)}")
        state_clip = check_state_clip(state_clip)
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
    """The learner ``model`` (one of :data:`MODELS`) at the sizes of ``cfg``, on
    ``cfg.device``. The VSML network takes its sub-LSTM settings from ``cfg.network``."""
    m, n = cfg.meta_learning, cfg.network
    inputs, spec = m.input_side ** 2, model_spec(model)
    if spec.architecture == "vsml":
        net = VSMLNetwork([inputs, NUM_CLASSES], hidden_size=n.hidden_size, msg_size=n.msg_size,
                          micro_ticks=n.micro_ticks, reduce=n.reduce, output_bound=n.output_bound,
                          init_rand_fraction=n.init_rand_fraction, position_inputs=n.position_inputs,
                          generator=generator, layer_norm=spec.layer_norm)
    else:
        net = MetaRNN(inputs, m.meta_rnn_hidden, micro_ticks=n.micro_ticks, output_bound=n.output_bound,
                      init_rand_fraction=n.init_rand_fraction, label_input=spec.label_input,
                      generator=generator)
    return net.to(get_device(cfg.device))


def permutes_labels(cfg: Config, model: str) -> bool:
    """Whether ``model`` meta-trains on episodes with permuted labels: as
    ``meta_learning.permute_labels`` says, except for :data:`FIXED_LABEL_MODELS`."""
    return cfg.meta_learning.permute_labels and not model_spec(model).fixed_labels


def feedback(learner: nn.Module, y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """What ``learner`` reads at the next step about its prediction ``y`` of ``labels``: its
    own :meth:`MetaRNN.feedback` where it has one, else the error ``softmax(y) - onehot``."""
    own = getattr(learner, "feedback", None)
    return own(y, labels) if own is not None else cross_entropy_error(y, labels)


def feedback_size(learner: nn.Module) -> int:
    """Numbers in :func:`feedback` (the zeros a learner reads at its first step)."""
    return getattr(learner, "feedback_size", NUM_CLASSES)


def learned_variable_counts(learner: nn.Module) -> Dict[str, int]:
    """``{"V_M": |V_M|, "V_L": |V_L|}`` of a learner."""
    return {"V_M": learner.num_meta_variables(), "V_L": learner.num_learned_variables()}
