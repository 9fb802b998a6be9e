"""Chapter 1: the sparse, shared matrix W̃ of Eq. 4 and how many variables it saves."""

from __future__ import annotations

from typing import Optional, Sequence

from ..vanilla import (
    CASE_NAMES,
    count_equivalent_meta_rnn_variables,
    count_learned_variables,
    count_meta_variables,
    w_tilde_cases,
)
from .common import PAGE_WIDTH, figure_explorer, legend_below

#: Colour of each Eq. 4 case, in code order (0, C, W, C+W).
CASE_COLORS = ("#f2f2f2", "#d62728", "#1f77b4", "#9467bd")
#: Colour of entries that are not highlighted by the explorer.
DIMMED_COLOR = "#d9d9d9"


def plot_w_tilde_cases(A: int, N: int, highlight: Optional[str] = None, ax=None):
    """Heat-map of the flattened W̃ (Eq. 4) for ``A = B``, every entry coloured by its case.

    Rows are senders ``(c, d, i)``, columns receivers ``(a, b, j)``; thin lines separate
    sub-RNNs (blocks of ``N``), thick lines separate values of the first index.

    Args:
        A: sub-RNNs per axis (``A = B``).
        N: state size of one sub-RNN.
        highlight: ``None`` / ``"all"``, or one of ``"0"``, ``"C"``, ``"W"``, ``"C+W"`` to
            grey out the other cases.
        ax: matplotlib axes to draw on (default: a new figure).

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    if highlight not in (None, "all") and highlight not in CASE_NAMES:
        raise ValueError(f"highlight must be None, 'all' or one of {CASE_NAMES}, got {highlight!r}")
    codes = w_tilde_cases(A, N).numpy()  # [A·A·N, A·A·N]
    colors = list(CASE_COLORS)
    if highlight not in (None, "all"):
        keep = CASE_NAMES.index(highlight)
        colors = [c if k == keep else DIMMED_COLOR for k, c in enumerate(colors)]
    if ax is None:  # the heat map grows with W̃ up to the page width; the legend sits below
        size = min(PAGE_WIDTH - 1.5, 3.5 + 0.12 * codes.shape[0])
        _, ax = plt.subplots(figsize=(size + 1.0, size + 1.0))
    ax.imshow(codes, cmap=ListedColormap(colors), vmin=-0.5, vmax=len(CASE_NAMES) - 0.5,
              interpolation="nearest")
    n = codes.shape[0]
    for k in range(1, A * A):  # sub-RNN boundaries
        width = 1.2 if k % A == 0 else 0.3
        ax.axhline(k * N - 0.5, color="k", lw=width)
        ax.axvline(k * N - 0.5, color="k", lw=width)
    ticks = [k * N + (N - 1) / 2 for k in range(A * A)]
    labels = [f"{k // A},{k % A}" for k in range(A * A)]
    ax.set_xticks(ticks, labels, rotation=90)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("receiver sub-RNN (a, b); N units j each")
    ax.set_ylabel("sender sub-RNN (c, d); N units i each")
    counts = {name: int((codes == k).sum()) for k, name in enumerate(CASE_NAMES)}
    ax.set_title(f"W̃ for A = B = {A}, N = {N}: {n}×{n} entries, {n * n - counts['0']} non-zero,\n"
                 f"all built from the {2 * N * N} numbers in W and C", fontsize=10)
    handles = [Patch(color=colors[k], label=f"{name} ({counts[name]})")
               for k, name in enumerate(CASE_NAMES)]
    ax.figure.tight_layout()
    legend_below(ax.figure, handles, ncol=4).set_title("Eq. 4 case (entries)")
    return ax.figure


def plot_variable_counts(A_values: Sequence[int], N: int, ax=None):
    """|V_M| and |V_L| of the vanilla VS Meta RNN against ``A = B``, on log axes, beside the
    |V_M| a plain Meta RNN (Eq. 1) with the same state would need.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    A_values = list(A_values)
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH - 1.0, 4.0))
    vm = [count_meta_variables(N) for _ in A_values]
    vl_ = [count_learned_variables(A, N) for A in A_values]
    dense = [count_equivalent_meta_rnn_variables(A, N) for A in A_values]
    ax.plot(A_values, vl_, "o-", label="|V_L| = A²N (state)")
    ax.plot(A_values, vm, "s-", label="|V_M| = 2N² + N (VS Meta RNN)")
    ax.plot(A_values, dense, "^--", label="|V_M| of a plain Meta RNN, (A²N)² + A²N")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("A = B (sub-RNNs per axis)")
    ax.set_ylabel("number of variables")
    ax.set_title(f"Variable sharing, N = {N}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure


def w_tilde_explorer(A: int = 3, N: int = 2, A_max: int = 6, N_max: int = 4):
    """An ipywidgets explorer of :func:`plot_w_tilde_cases`: sliders for ``A`` and ``N`` and a
    menu for the highlighted case. Returns the widget (display it in a notebook)."""
    import ipywidgets as widgets

    a_slider = widgets.IntSlider(value=A, min=1, max=A_max, description="A = B")
    n_slider = widgets.IntSlider(value=N, min=1, max=N_max, description="N")
    menu = widgets.Dropdown(options=["all", *CASE_NAMES], value="all", description="highlight")
    return figure_explorer(
        [a_slider, n_slider, menu],
        lambda: plot_w_tilde_cases(a_slider.value, n_slider.value, highlight=menu.value))
