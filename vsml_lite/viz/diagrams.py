"""The paper's diagrams drawn from code (Chapter 2): Figures 1, 2, 3 and 10.

Connections between sub-RNNs come from :func:`vsml_lite.vanilla.w_tilde_cases` (Eq. 4), so a
drawn arrow is an entry of W̃ the package computes with, coloured by its case as in Chapter 1's
heat-map (:data:`~vsml_lite.viz.equations.CASE_COLORS`: C red, W blue, C+W purple).
"""

from __future__ import annotations

from ..vanilla import CASE_C, CASE_CW, CASE_W, CASE_ZERO, w_tilde_cases
from .common import PAGE_WIDTH
from .equations import CASE_COLORS, plot_w_tilde_cases

#: Text size of every label in these diagrams (points; legible at page width).
FONT = 11
#: Colours of the diagrams' roles: a weight (orange, as in the paper's Figure 2), the update
#: rule (green), forward signals (blue), backward signals (red), neurons (gray).
WEIGHT_COLOR, RULE_COLOR, FORWARD_COLOR, BACKWARD_COLOR, NEURON_COLOR = (
    "#ff7f0e", "#2ca02c", "#1f77b4", "#d62728", "#b0b0b0")


def _axes(ax, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")


def _box(ax, x, y, w, h, label=None, color="white", edge="black", units=0, unit_colors=None, fontsize=FONT):
    """A sub-RNN: a rounded box centred at (x, y) with ``units`` state circles in a row."""
    from matplotlib.patches import Circle, FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor=edge, linewidth=1.2))
    r = min(w / (2.6 * max(units, 1)), h / 4)
    for k in range(units):
        cx = x - w / 2 + w * (k + 0.5) / units
        fc = (unit_colors or {}).get(k, "white")
        ax.add_patch(Circle((cx, y - (0.1 * h if label else 0)), r, facecolor=fc, edgecolor="black", linewidth=0.8))
    if label:
        ax.text(x, y + h / 2 - 0.05 * h, label, ha="center", va="top", fontsize=fontsize)


def _arrow(ax, p, q, color="black", rad=0.0, width=1.3, label=None, label_at=0.5, fontsize=FONT, shrink=0.0):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=12, color=color, linewidth=width,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=shrink, shrinkB=shrink))
    if label:
        lx, ly = p[0] + (q[0] - p[0]) * label_at, p[1] + (q[1] - p[1]) * label_at
        ax.text(lx, ly, label, color=color, fontsize=fontsize, ha="center", va="center",
                bbox=dict(facecolor="white", edgecolor="none", pad=0.5))


def _neuron(ax, x, y, label, r=0.28, color=NEURON_COLOR, fontsize=FONT):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, facecolor=color, edgecolor="black", linewidth=1.0))
    ax.text(x, y, label, ha="center", va="center", fontsize=fontsize)


def block_cases(A: int):
    """Eq. 4 at the level of sub-RNNs: ``[A, A, A, A]`` case codes, sender (c, d) to receiver (a, b)."""
    return w_tilde_cases(A, 1, flat=False)[:, :, 0, :, :, 0]


def plot_figure1(A: int = 3, N: int = 3, target=(1, 2)):
    """Figure 1: (a) the VS Meta RNN as an ``A x A`` grid of sub-RNNs with ``W`` inside and ``C``
    between (the arrows into sub-RNN ``target`` only); (b) the same as one Meta RNN with the
    sparse shared W̃ (Eq. 4, ``A = 2``); (c) the neural reading: sub-RNN (a, b) is the weight
    of the connection from neuron a to neuron b."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(PAGE_WIDTH, 7.2))
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, :]), fig.add_subplot(grid[0, 1])]
    ax = axes[0]
    _axes(ax, (-0.8, A * 1.5 - 0.2), (-0.9, A * 1.3 + 0.1))
    pos = {(a, b): (b * 1.5 + 0.5, (A - 1 - a) * 1.3 + 0.5) for a in range(A) for b in range(A)}
    cases = block_cases(A)
    ta, tb = target
    for (a, b), (x, y) in pos.items():
        _box(ax, x, y, 1.1, 0.8, f"({a + 1},{b + 1})", units=N, color="#fff4e6" if (a, b) == target else "white")
        _arrow(ax, (x + 0.55, y + 0.15), (x + 0.55, y - 0.2), color=CASE_COLORS[CASE_W], rad=-1.4, width=1.0)
    for (c, d), (x, y) in pos.items():
        if cases[c, d, ta, tb] in (CASE_C, CASE_CW) and (c, d) != target:
            tx, ty = pos[target]
            _arrow(ax, (x, y - 0.2), (tx, ty - 0.2), color=CASE_COLORS[CASE_C], rad=0.25, width=1.4, shrink=6)
    ax.text(-0.7, -0.75, f"blue loops: W inside every sub-RNN\nred: C, from sub-RNNs (c, {ta + 1}) into "
            f"({ta + 1},{tb + 1})", fontsize=FONT, ha="left", va="center")
    ax.set_title("(a) VS Meta RNN: a grid of sub-RNNs", fontsize=FONT + 1)
    plot_w_tilde_cases(2, 2, ax=axes[1])
    axes[1].set_title("(b) one Meta RNN with sparse, shared W̃ (Eq. 4)", fontsize=FONT + 1)
    ax = axes[2]
    _axes(ax, (-0.6, 4.6), (-0.8, A * 1.2 + 0.2))
    left = {a: (0.2, (A - 1 - a) * 1.2 + 0.4) for a in range(A)}
    right = {b: (3.8, (A - 1 - b) * 1.2 + 0.4) for b in range(A)}
    for a, p in left.items():
        for b, q in right.items():
            ax.plot([p[0], q[0]], [p[1], q[1]], color="#999999", linewidth=0.8, zorder=0)
            along = 0.3 + 0.2 * b  # where on the edge its weight is drawn, apart from the others
            mx, my = p[0] + along * (q[0] - p[0]), p[1] + along * (q[1] - p[1])
            ax.add_patch(plt.Rectangle((mx - 0.11, my - 0.11), 0.22, 0.22, facecolor=WEIGHT_COLOR,
                                       edgecolor="black", linewidth=0.6, zorder=2))
    for a, (x, y) in left.items():
        _neuron(ax, x, y, f"{a + 1}")
    for b, (x, y) in right.items():
        _neuron(ax, x, y, f"{b + 1}")
    ax.text(0.2, -0.65, "neuron a", ha="center", fontsize=FONT)
    ax.text(3.8, -0.65, "neuron b", ha="center", fontsize=FONT)
    ax.text(2.0, A * 1.2 - 0.1, r"orange: state $s_{ab}$ = weight", ha="center", fontsize=FONT)
    ax.set_title("(c) neural reading: states are weights", fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def plot_figure2():
    """Figure 2: (a) a weight w_ab with its forward computation (Eq. 9, blue) and update rule
    (Eq. 10, green); (b) the weight moved into the state of a small RNN whose recurrence does both."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.6))
    ax = axes[0]
    _axes(ax, (-0.5, 6.5), (-1.6, 3.0))
    _neuron(ax, 0.4, 1.2, "$x_a$", r=0.45)
    _neuron(ax, 5.6, 1.2, "$x_b$", r=0.45)
    ax.add_patch(plt.Rectangle((2.6, 0.95), 0.8, 0.5, facecolor=WEIGHT_COLOR, edgecolor="black"))
    ax.text(3.0, 1.2, "$w_{ab}$", ha="center", va="center", fontsize=FONT)
    _arrow(ax, (0.85, 1.2), (2.6, 1.2), FORWARD_COLOR)
    _arrow(ax, (3.4, 1.2), (5.15, 1.2), FORWARD_COLOR)
    ax.text(4.4, 1.75, r"$\sigma(\sum_a x_a w_{ab})$", ha="center", va="center", color=FORWARD_COLOR,
            fontsize=FONT)
    ax.text(3.0, 2.65, "forward computation (Eq. 9)", ha="center", color=FORWARD_COLOR, fontsize=FONT)
    ax.add_patch(plt.Rectangle((2.4, -1.2), 1.2, 0.7, facecolor="#e5f5e0", edgecolor=RULE_COLOR, linewidth=1.5))
    ax.text(3.0, -0.85, r"$f_\theta$", ha="center", va="center", fontsize=FONT + 1, color=RULE_COLOR)
    _arrow(ax, (0.6, 0.75), (2.4, -0.75), RULE_COLOR, rad=0.2)
    _arrow(ax, (5.4, 0.75), (3.6, -0.75), RULE_COLOR, rad=-0.2, label="$x_b, R$", label_at=0.35)
    _arrow(ax, (3.0, -0.5), (3.0, 0.95), RULE_COLOR, label=r"$\Delta w_{ab}$", label_at=0.45)
    ax.text(3.0, -1.5, "update rule (Eqs. 10, 11)", ha="center", color=RULE_COLOR, fontsize=FONT)
    ax.set_title("(a) a weight and its learning rule", fontsize=FONT + 1)
    ax = axes[1]
    _axes(ax, (-0.5, 7.1), (-1.6, 3.0))
    _box(ax, 3.0, 0.6, 2.6, 1.6, "sub-RNN (a, b)", color="#f7f7f7", units=3,
         unit_colors={0: WEIGHT_COLOR})
    ax.text(2.13, -0.15, "$w$", ha="center", va="center", fontsize=FONT)
    _arrow(ax, (3.9, 1.4), (2.1, 1.4), "black", rad=0.7, width=1.0)
    ax.text(3.0, 2.65, "recurrence: forward computation and update", ha="center", fontsize=FONT)
    _neuron(ax, 0.2, 0.6, "$x_a$", r=0.45)
    _neuron(ax, 6.55, 0.6, "$x_b$", r=0.45)
    _arrow(ax, (0.65, 0.6), (1.7, 0.6), FORWARD_COLOR, label="C", label_at=0.45)
    _arrow(ax, (4.3, 0.75), (6.1, 0.75), FORWARD_COLOR)
    ax.text(5.2, 1.1, "message", ha="center", va="center", color=FORWARD_COLOR, fontsize=FONT)
    _arrow(ax, (6.2, 0.2), (4.3, -0.1), BACKWARD_COLOR, rad=-0.2)
    ax.text(5.3, -0.45, "$x_b, R$ (U)", ha="center", va="center", color=BACKWARD_COLOR, fontsize=FONT)
    ax.text(3.0, -1.2, "duplicate this RNN for every (a, b)\nand connect the copies: Eq. 3",
            ha="center", va="center", fontsize=FONT)
    ax.set_title("(b) the weight as the state of an RNN", fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def plot_figure3(A: int = 3, B: int = 2):
    """Figure 3: learning algorithm cloning. A layer of ``A x B`` sub-RNNs, each storing a
    weight and a bias; forward (blue): ``y_b = Σ_a tanh(x_a) w_ab + b_ab``; backward (red): the
    error e_b enters column b and ``δ_a = Σ_b w_ab e_b`` leaves row a; update (green, inside
    every sub-RNN): ``Δw_ab = -η tanh(x_a) e_b``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.6))
    _axes(ax, (-2.6, B * 2.0 + 2.4), (-2.3, A * 1.3 + 1.4))
    pos = {(a, b): (b * 2.0 + 0.8, (A - 1 - a) * 1.3 + 0.5) for a in range(A) for b in range(B)}
    for (a, b), (x, y) in pos.items():
        _box(ax, x, y, 1.5, 0.9, f"({a + 1},{b + 1})", units=2, unit_colors={0: WEIGHT_COLOR, 1: "#fdd0a2"})
    for a in range(A):
        y = (A - 1 - a) * 1.3 + 0.5
        _arrow(ax, (-1.6, y + 0.15), (0.0, y + 0.15), FORWARD_COLOR, label=f"$x_{a + 1}$", label_at=0.3)
        _arrow(ax, (0.0, y - 0.2), (-1.6, y - 0.2), BACKWARD_COLOR, label=rf"$\delta_{a + 1}$", label_at=0.7)
    for b in range(B):
        x = b * 2.0 + 0.8
        _arrow(ax, (x - 0.3, -0.05), (x - 0.3, -1.3), FORWARD_COLOR, label=f"$y_{b + 1}$", label_at=0.75)
        _arrow(ax, (x + 0.3, A * 1.3 + 0.9), (x + 0.3, A * 1.3 - 0.3), BACKWARD_COLOR, label=f"$e_{b + 1}$", label_at=0.3)
    ax.text(-2.5, -1.75, r"forward (blue): $y_b = \sum_a \tanh(x_a) w_{ab} + b_{ab}$;   "
            r"backward (red): $\delta_a = \sum_b w_{ab} e_b$", fontsize=FONT, ha="left")
    ax.text(-2.5, -2.25, r"update, inside every sub-RNN: $\Delta w_{ab} = -\eta \tanh(x_a) e_b$, "
            r"$\Delta b_{ab} = -\eta e_b$  (orange: $w_{ab}$, light: $b_{ab}$)", fontsize=FONT, ha="left",
            color=RULE_COLOR)
    ax.set_title("Learning algorithm cloning: backpropagation through a layer of sub-RNNs", fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def plot_figure10(N: int = 4):
    """Figure 10 for ``A = B = 2``: (a) the four sub-RNNs with W (blue) and C (red) from Eq. 4;
    (b) unrolled over two ticks, one arrow per non-zero block of W̃, coloured by its case;
    (c) the C arrows routed through gray 'neurons' (Σ_c s_ca C, one per a), the neural reading."""
    import matplotlib.pyplot as plt

    A = 2
    cases = block_cases(A)
    names = [(a, b) for a in range(A) for b in range(A)]
    fig = plt.figure(figsize=(PAGE_WIDTH, 7.4))
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])]
    ax = axes[0]
    _axes(ax, (-0.3, 3.9), (-0.9, 3.5))
    pos = {(a, b): (b * 2.0 + 0.8, (A - 1 - a) * 2.0 + 0.6) for a, b in names}
    for (a, b), (x, y) in pos.items():
        _box(ax, x, y, 1.4, 0.8, f"({a + 1},{b + 1})", units=N)
        _arrow(ax, (x + 0.55, y + 0.4), (x + 0.2, y + 0.42), CASE_COLORS[CASE_W], rad=-1.6, width=1.0)
    for (c, d) in names:
        for (a, b) in names:
            if (c, d) != (a, b) and cases[c, d, a, b] in (CASE_C, CASE_CW):
                (x0, y0), (x1, y1) = pos[(c, d)], pos[(a, b)]
                _arrow(ax, (x0, y0 - 0.25), (x1, y1 - 0.25), CASE_COLORS[CASE_C], rad=0.3, shrink=8)
    ax.text(0.0, -0.75, "red: C, from (c, a) to (a, b); blue: W", fontsize=FONT)
    ax.set_title(f"(a) A = B = 2, N = {N}", fontsize=FONT + 1)

    def column(ax, x, t_label):
        ys = {n: (3 - k) * 1.0 + 0.2 for k, n in enumerate(names)}
        for (a, b), y in ys.items():
            _box(ax, x, y, 1.2, 0.7, None, units=N)
            ax.text(x + (-0.95 if x < 1 else 0.95), y, f"({a + 1},{b + 1})", ha="center", va="center", fontsize=FONT)
        ax.text(x, -0.55, t_label, ha="center", fontsize=FONT)
        return ys

    ax = axes[1]
    _axes(ax, (-0.7, 4.7), (-0.9, 3.9))
    y0, y1 = column(ax, 0.6, "tick t"), column(ax, 3.4, "tick t + 1")
    for src in names:
        for dst in names:
            case = int(cases[src + dst])
            if case != CASE_ZERO:
                _arrow(ax, (1.2, y0[src]), (2.8, y1[dst]), CASE_COLORS[case], width=1.1, shrink=2)
    ax.set_title("(b) unrolled over two ticks (W̃ by case)", fontsize=FONT + 1)
    ax = axes[2]
    _axes(ax, (-0.5, 5.5), (-0.9, 3.9))
    y0, y1 = column(ax, 0.6, "tick t"), column(ax, 4.4, "tick t + 1")
    neuron_y = {a: 2.7 - 2.0 * a for a in range(A)}
    for a, ny in neuron_y.items():
        _neuron(ax, 2.5, ny, f"n{a + 1}", r=0.3)
        for c in range(A):
            _arrow(ax, (1.2, y0[(c, a)]), (2.2, ny), CASE_COLORS[CASE_C], width=1.0, shrink=2)
        for b in range(A):
            _arrow(ax, (2.8, ny), (3.8, y1[(a, b)]), NEURON_COLOR, width=1.3, shrink=2)
    for n in names:
        _arrow(ax, (1.2, y0[n] + 0.22), (3.8, y1[n] + 0.22), CASE_COLORS[CASE_W], width=0.8, rad=-0.08, shrink=2)
    ax.text(2.5, -0.85, r"gray: neuron $a$ = $\sum_c s_{ca} C$, added to every $(a, b)$", ha="center", fontsize=FONT)
    ax.set_title("(c) C through 'neurons': the neural reading", fontsize=FONT + 1)
    fig.tight_layout()
    return fig
