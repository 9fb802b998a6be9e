"""Chapter 2: weights that live in states, and learned learning rules."""

from __future__ import annotations

from typing import Dict, Sequence

from .common import PAGE_WIDTH, figure_explorer

#: Plot labels of the construction's state units (:data:`vsml_lite.fastweights.UNIT_NAMES`).
UNIT_LABELS = ("$w_{ab}$", "$x_a$", "$x_a w_{ab}$", "$x_b^2$", "$x_b$")
#: Colour per learner of the learned-rules comparison, by name prefix.
LEARNER_COLORS = {"delta": "#1f77b4", "learned": "#2ca02c", "VS": "#d62728"}


def _color(name: str) -> str:
    return next((c for k, c in LEARNER_COLORS.items() if name.startswith(k)), "black")


def plot_weights_in_states(rule: str, A: int = 4, B: int = 3, steps: int = 30, step: int = 30,
                           eta: float = 0.1, seed: int = 0):
    """The explicit network's weights ``w(t)`` (Eqs. 9-11) beside the weight units ``s_ab0(t)``
    of its VS Meta RNN construction (Eq. 12) at step ``step``, and every state unit of
    sub-RNN (1, 1) over time."""
    import matplotlib.pyplot as plt

    from ..fastweights import WEIGHT_UNIT, trace_rule

    trace = trace_rule(rule, A, B, steps, eta, seed)
    w, s = trace["weights"][step], trace["states"][step, ..., WEIGHT_UNIT]
    lim = max(float(trace["weights"].abs().max()), 1e-9)
    # Two rows, so the figure spans the page and no more: the weights above, the units below.
    fig = plt.figure(figsize=(PAGE_WIDTH, 6.6))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1], hspace=0.55, wspace=0.3)
    heat = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
    for ax, m, title in ((heat[0], w, "explicit network: $w_{ab}$"), (heat[1], s, "VS Meta RNN: $s_{ab0}$")):
        im = ax.imshow(m.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("b", fontsize=10)
        ax.set_ylabel("a", fontsize=10)
        ax.set_xticks(range(B), [str(b + 1) for b in range(B)])
        ax.set_yticks(range(A), [str(a + 1) for a in range(A)])
    fig.colorbar(im, ax=heat, shrink=0.9)
    ax = fig.add_subplot(grid[1, :])
    t = range(steps + 1)
    for k, label in enumerate(UNIT_LABELS):
        ax.plot(t, trace["states"][:, 0, 0, k].numpy(), label=label, linewidth=2.2 if k == WEIGHT_UNIT else 1.2)
    ax.plot(t, trace["weights"][:, 0, 0].numpy(), "k:", linewidth=2, label="explicit $w_{11}$")
    ax.axvline(step, color="gray", linewidth=0.8)
    ax.set_xlabel("step t", fontsize=10)
    diff = float((trace["states"][..., WEIGHT_UNIT] - trace["weights"]).abs().max())
    ax.set_title(f"state units of sub-RNN (1, 1); {rule} rule, step {step};\n"
                 f"largest $|s_{{ab0}} - w_{{ab}}|$: {diff:.1e}", fontsize=10)
    ax.legend(ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return fig


def rules_explorer(A: int = 4, B: int = 3, steps: int = 30, rules: Sequence[str] = ("hebb", "oja", "delta", "decay")):
    """An ipywidgets explorer of :func:`plot_weights_in_states`: a rule, the grid size, a step."""
    import ipywidgets as widgets

    rule = widgets.Dropdown(options=list(rules), value=rules[0], description="rule")
    a = widgets.IntSlider(value=A, min=1, max=8, description="A")
    b = widgets.IntSlider(value=B, min=1, max=8, description="B")
    step = widgets.IntSlider(value=steps, min=0, max=steps, description="step")
    return figure_explorer(
        [rule, a, b, step],
        lambda: plot_weights_in_states(rule.value, a.value, b.value, steps, step.value),
        layout=[widgets.HBox([rule, step]), widgets.HBox([a, b])])


def plot_learned_curves(curves: Dict[str, Sequence[float]], ax=None):
    """Test loss at each step of an episode for every learner (fresh episodes, mean)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=name, color=_color(name), linewidth=1.8)
    ax.set_yscale("log")
    ax.set_xlabel("step of the episode (one example per step)", fontsize=10)
    ax.set_ylabel("squared error of the prediction", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def plot_weight_traces(weights: Dict[str, Sequence[float]], target: float, ax=None):
    """One weight (a = b = 1) of one test episode under each learner, with the value it should reach."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for name, trace in weights.items():
        ax.plot(range(len(trace)), trace, label=name, color=_color(name), linewidth=1.8)
    ax.axhline(target, color="black", linestyle="--", linewidth=1, label="$W^*_{11}$ (the answer)")
    ax.set_xlabel("step of the episode", fontsize=10)
    ax.set_ylabel("weight $w_{11}$ (VS: effective weight)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def plot_rule_surface(rule, eta: float, span: float = 2.0, points: int = 41):
    """What a learned rule ``f_θ`` does to one weight, beside the delta rule ``η x_a R_b``: the
    update as a function of the input ``x_a`` and the feedback ``R_b`` (at ``x_b = w = 0``)."""
    import matplotlib.pyplot as plt
    import torch

    grid = torch.linspace(-span, span, points)
    xa, R = torch.meshgrid(grid, grid, indexing="ij")
    zero = torch.zeros_like(xa)
    with torch.no_grad():
        learned = rule(xa, zero, zero, R)
    delta = eta * xa * R
    lim = float(max(learned.abs().max(), delta.abs().max()))
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.4))
    fig.subplots_adjust(wspace=0.4)
    for ax, m, title in ((axes[0], delta, f"delta rule: $\\eta x_a R_b$ (η = {eta:g})"),
                         (axes[1], learned, r"learned rule $f_\theta(x_a, 0, 0, R_b)$")):
        im = ax.imshow(m.T.numpy(), origin="lower", extent=(-span, span, -span, span), cmap="RdBu_r",
                       vmin=-lim, vmax=lim)
        ax.set_xlabel("input $x_a$", fontsize=10)
        ax.set_ylabel("feedback $R_b$", fontsize=10)
        ax.set_title(title, fontsize=11)
    fig.colorbar(im, ax=axes, shrink=0.85, label=r"$\Delta w_{ab}$")
    return fig
