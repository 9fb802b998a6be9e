"""The learning rules of :mod:`.rules` as VS Meta RNNs: Eqs. 5, 6, 8, 12 and 14.

A dense layer of ``A x B`` sub-RNNs with state ``s`` of shape ``[..., A, B, N]``: sub-RNN
``(a, b)`` is the connection from input neuron ``a`` to output neuron ``b``. Every tick it reads
its own state, the **forward message** ``f_a`` (``[M]``) of neuron ``a`` and the **backward
message** ``g_b`` (``[M]``) of neuron ``b``, the two interaction terms of Eq. 14 (``C`` and ``U``;
for one layer the messages come from the datum and from the feedback instead of from other
sub-RNNs). Two kinds of tick, with the same shared parameters for every sub-RNN:

* :func:`additive_tick`, Eq. 14 (Eq. 3 with the backward term): ``s <- σ(b̂ + sW + fC + gU)``;
* :func:`gated_tick`, the multiplicative form of Eqs. 5/6: ``s <- F ⊙ s + I ⊙ G``, where
  ``F``, ``I``, ``G`` each come from their own ``(b̂, W, C, U)`` as in an LSTM's cell update
  (Eq. 6). With ``gates = ("identity",) * 3`` the gates are affine and every construction
  below is exact; an LSTM's gates (``sigmoid, sigmoid, tanh``) approximate them.

**The protocol** (:func:`run_vs`): one step of the explicit network (Eqs. 9-11) is ``l`` ticks
(``ticks``). Tick 1 (forward): ``f_a = [x_a, 1]``, ``g_b = 0``. The layer's output is read as
``m_b = Σ_a s_ab · r`` (Section 3.1: the sum over ``a`` of a readout of each state) and
``x_b(t+1) = σ(m_b)`` (the neuron's non-linearity, applied where the message is read, as the
paper's sub-RNNs apply ``tanh`` to their input). Tick 2: the feedback
``g_b = [x_b(t+1), R_b, 1]``, ``f_a = 0``. Ticks 3..l: silence (``f = g = 0``).

**The constructions** (:func:`construct_rule`, Eq. 12 with ``w_ab := s_ab0``): ``V_M`` set by
hand so that ``l`` ticks carry out a named rule exactly. The state units (:data:`UNIT_NAMES`):
``s_ab0`` is the weight, ``s_ab1`` keeps ``x_a``, ``s_ab2`` the product ``x_a w_ab`` (read out
as the message), ``s_ab3`` and ``s_ab4`` hold ``x_b²`` and ``x_b`` for Oja's rule. Every
product of two signals in Eqs. 9-10 is one gate times one value (``I ⊙ G`` or ``F ⊙ s``):
this is why the rules need the multiplicative interactions of Eqs. 5/6, and why Oja's rule,
whose update contains ``x_b · x_b · w``, needs a third tick (:data:`TICKS_NEEDED`).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from .rules import activation, check_rule, run_stream

#: Gate activations by name, for :func:`gated_tick` (``identity`` for exact constructions).
GATE_ACTIVATIONS = {"identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
#: An LSTM's cell update (Eq. 6): sigmoid forget and input gates, tanh candidate.
LSTM_GATES = ("sigmoid", "sigmoid", "tanh")
#: Affine gates: the hand constructions are exact with these.
LINEAR_GATES = ("identity", "identity", "identity")
#: Slots of the forward message f_a: the datum x_a, 1 on the forward tick, and 0 (messages share width M = 3).
FORWARD_SLOTS = ("x_a", "forward tick", "unused")
#: Slots of the backward message g_b: the output x_b(t+1), the feedback R_b, 1 on the feedback tick.
FEEDBACK_SLOTS = ("x_b", "R_b", "feedback tick")
#: What each state unit of a construction holds (Eq. 12: the weight is unit 0).
UNIT_NAMES = ("w_ab", "x_a", "x_a w_ab", "x_b^2", "x_b")
WEIGHT_UNIT, PRE_UNIT, PRODUCT_UNIT, SQUARE_UNIT, POST_UNIT = range(5)
#: The fewest ticks per step with which :func:`construct_rule` carries out each rule exactly.
TICKS_NEEDED = {"hebb": 2, "oja": 3, "delta": 2, "decay": 1}
#: Gate order in the stacked parameters: forget, input, candidate (Eq. 6).
F_GATE, I_GATE, G_GATE = 0, 1, 2


def additive_tick(s: torch.Tensor, f: torch.Tensor, g: torch.Tensor, W: torch.Tensor, C: torch.Tensor,
                  U: torch.Tensor, b_hat: torch.Tensor, sigma: str = "tanh") -> torch.Tensor:
    """One additive VS Meta RNN tick of a layer, Eq. 14: ``s_ab <- σ(b̂ + s_ab W + f_a C + g_b U)``.

    Args:
        s: ``[..., A, B, N]``. f: ``[..., A, M]``. g: ``[..., B, M]``.
        W: ``[N, N]``. C, U: ``[M, N]``. b_hat: ``[N]``. sigma: ``"tanh"`` or ``"identity"``.
    """
    pre = b_hat + s @ W + (f @ C).unsqueeze(-2) + (g @ U).unsqueeze(-3)  # (Eq. 14)
    return activation(sigma)(pre)


def gated_tick(s: torch.Tensor, f: torch.Tensor, g: torch.Tensor, W: torch.Tensor, C: torch.Tensor,
               U: torch.Tensor, b_hat: torch.Tensor, gates: Sequence[str] = LINEAR_GATES) -> torch.Tensor:
    """One multiplicative VS Meta RNN tick (Eqs. 5/6): ``s <- F ⊙ s + I ⊙ G``.

    Args:
        s: ``[..., A, B, N]``. f: ``[..., A, M]``. g: ``[..., B, M]``.
        W: ``[3, N, N]``, C and U: ``[3, M, N]``, b_hat: ``[3, N]``: one Eq. 14 pre-activation per
            gate, in the order forget ``F``, input ``I``, candidate ``G``.
        gates: activation names of ``F``, ``I``, ``G`` (:data:`GATE_ACTIVATIONS`).
    """
    pre = (b_hat.reshape(3, *(1,) * (s.dim() - 1), -1) + torch.einsum("...abi,kij->k...abj", s, W)
           + torch.einsum("...ai,kij->k...aj", f, C).unsqueeze(-2)
           + torch.einsum("...bi,kij->k...bj", g, U).unsqueeze(-3))          # (Eq. 14), per gate
    F, I, G = (GATE_ACTIVATIONS[name](p) for name, p in zip(gates, pre))
    return F * s + I * G                                                   # (Eq. 6)


class VSLayer(nn.Module):
    """A layer of sub-RNNs with shared ``V_M`` run by :func:`run_vs`; gated (Eq. 6) or additive (Eq. 14).

    Args:
        state_size: ``N``. kind: ``"gated"`` or ``"additive"``.
        gates: for ``"gated"``, the activations of F, I, G. sigma: for ``"additive"``, σ.
        init_std: scale of the random ``V_M`` (times ``1/sqrt(fan-in)``).
        generator: seeds ``V_M``.
    """

    def __init__(self, state_size: int = len(UNIT_NAMES), kind: str = "gated", gates: Sequence[str] = LSTM_GATES,
                 sigma: str = "tanh", init_std: float = 1.0, generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if kind not in ("gated", "additive"):
            raise ValueError(f"kind must be 'gated' or 'additive', got {kind!r}")
        unknown = [name for name in gates if name not in GATE_ACTIVATIONS]
        if len(gates) != 3 or unknown:
            raise ValueError(f"gates must name 3 of {', '.join(GATE_ACTIVATIONS)}, got {tuple(gates)}")
        activation(sigma)  # checks the name
        self.kind, self.gates, self.sigma = kind, tuple(gates), sigma
        N, M = state_size, len(FEEDBACK_SLOTS)
        k = (3,) if kind == "gated" else ()
        scale = init_std * (N + 2 * M) ** -0.5

        def param(*shape):
            return nn.Parameter(torch.randn(*k, *shape, generator=generator) * scale)

        self.W, self.C, self.U, self.b_hat = param(N, N), param(M, N), param(M, N), param(N)
        self.readout = nn.Parameter(torch.randn(N, generator=generator) * N ** -0.5)

    @property
    def state_size(self) -> int:
        return self.readout.shape[0]

    def tick(self, s: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.kind == "gated":
            return gated_tick(s, f, g, self.W, self.C, self.U, self.b_hat, self.gates)
        return additive_tick(s, f, g, self.W, self.C, self.U, self.b_hat, self.sigma)

    def output(self, s: torch.Tensor) -> torch.Tensor:
        """The layer's forward message ``m_b = Σ_a s_ab · r``, ``[..., B]`` (Section 3.1)."""
        return (s @ self.readout).sum(-2)

    def meta_variables(self) -> int:
        """``|V_M|``: every shared number."""
        return sum(p.numel() for p in self.parameters())


def forward_message(x: torch.Tensor) -> torch.Tensor:
    """``f_a = [x_a, 1, 0]`` for the forward tick, ``[..., A, 3]``."""
    return torch.stack([x, torch.ones_like(x), torch.zeros_like(x)], dim=-1)


def feedback_message(y: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """``g_b = [x_b(t+1), R_b, 1]`` for the feedback tick, ``[..., B, 3]``."""
    return torch.stack([y, R, torch.ones_like(y)], dim=-1)


def initial_state(w0: torch.Tensor, state_size: int) -> torch.Tensor:
    """A state ``[..., A, B, N]`` whose weight unit holds ``w0`` (Eq. 12: ``w_ab := s_ab0``), rest 0."""
    s = w0.new_zeros(*w0.shape, state_size)
    s[..., WEIGHT_UNIT] = w0
    return s


def vs_step(layer: VSLayer, s: torch.Tensor, x: torch.Tensor, target: torch.Tensor, ticks: int,
            sigma: str = "identity") -> Tuple[torch.Tensor, torch.Tensor]:
    """One step of the protocol (module docstring): ``ticks`` ticks of ``layer``.

    Args:
        s: ``[..., A, B, N]``. x: ``[..., A]``. target: ``[..., B]``. sigma: σ of Eq. 9, applied
            to the layer's message. ticks: ``l``, at least 1.

    Returns:
        ``(output [..., B], new state)``.
    """
    if ticks < 1:
        raise ValueError(f"ticks must be at least 1, got {ticks}")
    f = forward_message(x)
    silent_f, silent_g = torch.zeros_like(f), s.new_zeros(*target.shape, len(FEEDBACK_SLOTS))
    s = layer.tick(s, f, silent_g)                                       # tick 1: forward
    y = activation(sigma)(layer.output(s))                               # x_b(t+1) = σ(m_b)
    if ticks >= 2:
        s = layer.tick(s, silent_f, feedback_message(y, target - y))     # tick 2: feedback R = -error
    for _ in range(ticks - 2):
        s = layer.tick(s, silent_f, silent_g)                            # ticks 3..l: silence
    return y, s


def run_vs(layer: VSLayer, xs: torch.Tensor, targets: torch.Tensor, s0: torch.Tensor, ticks: int,
           sigma: str = "identity") -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`vs_step` over a stream: ``xs [T, ..., A]``, ``targets [T, ..., B]``, ``s0 [..., A, B, N]``.

    Returns:
        ``(outputs [T, ..., B], states [T + 1, ..., A, B, N])``.
    """
    return run_stream(lambda x, target, s: vs_step(layer, s, x, target, ticks, sigma), xs, targets, s0)


def construct_rule(rule: str, eta: float, ticks: Optional[int] = None, dtype=torch.float64) -> VSLayer:
    """Eq. 12 by hand: a gated VS Meta RNN layer (affine gates) whose ``ticks`` ticks per step
    carry out ``rule`` of :mod:`.rules` exactly, with the weight in unit 0.

    Args:
        rule: a name in :data:`RULES`. eta: its learning rate η.
        ticks: ticks per step ``l`` (default :data:`TICKS_NEEDED`); fewer than that is refused.

    Example:
        >>> layer = construct_rule("hebb", eta=0.1)          # 2 ticks per step
        >>> layer.W.shape, layer.C.shape                      # 3 gates, N = 5, M = 3
        (torch.Size([3, 5, 5]), torch.Size([3, 3, 5]))
    """
    check_rule(rule)
    if not isinstance(rule, str):
        raise ValueError("construct_rule builds the named rules only")
    ticks = TICKS_NEEDED[rule] if ticks is None else ticks
    if ticks < TICKS_NEEDED[rule]:
        raise ValueError(f"the {rule} rule needs at least {TICKS_NEEDED[rule]} ticks per step, got {ticks}")
    layer = VSLayer(kind="gated", gates=LINEAR_GATES).to(dtype)
    w_, x_, p_, q_, y_ = WEIGHT_UNIT, PRE_UNIT, PRODUCT_UNIT, SQUARE_UNIT, POST_UNIT
    X, FWD = 0, 1                      # forward message slots
    Y, R = 0, 1                        # feedback message slots
    F, I, G = F_GATE, I_GATE, G_GATE
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        W, C, U, b = layer.W, layer.C, layer.U, layer.b_hat
        # x_a unit: overwritten with the datum on the forward tick, held after (F = 1 - flag).
        b[F, x_], C[F, FWD, x_], b[I, x_], C[G, X, x_] = 1.0, -1.0, 1.0, 1.0
        # Product unit: x_a · w_ab on the forward tick (I = x_a, G = w), 0 after. Eq. 9's term.
        C[I, X, p_], W[G, w_, p_] = 1.0, 1.0
        layer.readout[p_] = 1.0
        # Weight unit: held (F = 1) unless the rule changes it.
        b[F, w_] = 1.0
        if rule == "hebb":      # Δw = η x_a x_b on the feedback tick: I = η x_a, G = x_b
            W[I, x_, w_], U[G, Y, w_] = eta, 1.0
        elif rule == "delta":   # Δw = η x_a R_b on the feedback tick: I = η x_a, G = R_b
            W[I, x_, w_], U[G, R, w_] = eta, 1.0
        elif rule == "oja":     # tick 2 stores x_b² and x_b; tick 3: w <- (1 - η x_b²) w + η x_a x_b
            U[I, Y, q_], U[G, Y, q_] = 1.0, 1.0          # x_b² = I·G, F = 0
            b[I, y_], U[G, Y, y_] = 1.0, 1.0              # x_b, F = 0
            W[F, q_, w_] = -eta                           # F = 1 - η x_b²
            W[I, x_, w_], W[G, y_, w_] = eta, 1.0         # I·G = η x_a x_b
        else:                   # decay: w <- (1 - η) w per step, spread evenly over the ticks
            b[F, w_] = (1.0 - eta) ** (1.0 / ticks)
    return layer


def equality_check(rule: str, eta: float, A: int, B: int, steps: int, generator: torch.Generator,
                   ticks: Optional[int] = None, sigma: str = "identity") -> Dict[str, float]:
    """Run the explicit network (Eqs. 9-11) and its VS Meta RNN construction on one random
    stream (:func:`trace_rule`) and report the largest differences of outputs and weights.

    Returns:
        ``{"rule", "ticks", "output_error", "weight_error", "weight_scale"}``.
    """
    ticks = TICKS_NEEDED[rule] if ticks is None else ticks
    trace = trace_rule(rule, A, B, steps, eta, sigma=sigma, ticks=ticks, generator=generator)
    ws = trace["weights"]
    return {"rule": rule, "ticks": ticks, "output_error": (trace["vs_outputs"] - trace["outputs"]).abs().max().item(),
            "weight_error": (trace["states"][..., WEIGHT_UNIT] - ws).abs().max().item(),
            "weight_scale": ws.abs().max().item()}


def trace_rule(rule: str, A: int, B: int, steps: int, eta: float, seed: int = 0, sigma: str = "tanh",
               ticks: Optional[int] = None, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """One random stream (from ``generator``, else seeded with ``seed``) run by the explicit
    network and by its construction, ``ticks`` per step (default :data:`TICKS_NEEDED`; fewer
    runs the construction for the needed ticks with too few), in float64: ``{"xs" [T, A],
    "weights" [T + 1, A, B], "states" [T + 1, A, B, N], "outputs" and "vs_outputs" [T, B]}``."""
    from .rules import run_llr

    g = torch.Generator().manual_seed(seed) if generator is None else generator
    ticks = TICKS_NEEDED[rule] if ticks is None else ticks
    xs = torch.randn(steps, A, generator=g, dtype=torch.float64)
    targets = torch.randn(steps, B, generator=g, dtype=torch.float64)
    w0 = torch.randn(A, B, generator=g, dtype=torch.float64) * A ** -0.5
    ys, ws = run_llr(xs, targets, w0, rule, eta, sigma)
    layer = construct_rule(rule, eta, ticks=max(ticks, TICKS_NEEDED[rule]))
    with torch.no_grad():
        vys, states = run_vs(layer, xs, targets, initial_state(w0, layer.state_size), ticks, sigma)
    return {"xs": xs, "weights": ws, "states": states, "outputs": ys, "vs_outputs": vys}
