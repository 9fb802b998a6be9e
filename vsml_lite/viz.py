"""Figures and ipywidgets explorers for the book's chapters.

matplotlib and ipywidgets are imported inside the functions, so ``import vsml_lite`` stays light.
Every explorer has a static twin (the ``plot_*`` function it calls), which the book shows
beside it for readers of the static HTML.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .vanilla import (
    CASE_NAMES,
    count_equivalent_meta_rnn_variables,
    count_learned_variables,
    count_meta_variables,
    w_tilde_cases,
)

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
    if ax is None:
        size = min(7.0, 3.0 + 0.12 * codes.shape[0])
        _, ax = plt.subplots(figsize=(size + 1.8, size))
    ax.imshow(codes, cmap=ListedColormap(colors), vmin=-0.5, vmax=len(CASE_NAMES) - 0.5,
              interpolation="nearest")
    n = codes.shape[0]
    for k in range(1, A * A):  # sub-RNN boundaries
        width = 1.2 if k % A == 0 else 0.3
        ax.axhline(k * N - 0.5, color="k", lw=width)
        ax.axvline(k * N - 0.5, color="k", lw=width)
    ticks = [k * N + (N - 1) / 2 for k in range(A * A)]
    labels = [f"{k // A},{k % A}" for k in range(A * A)]
    ax.set_xticks(ticks, labels, fontsize=7, rotation=90)
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_xlabel("receiver sub-RNN (a, b); N units j each")
    ax.set_ylabel("sender sub-RNN (c, d); N units i each")
    counts = {name: int((codes == k).sum()) for k, name in enumerate(CASE_NAMES)}
    ax.set_title(f"W̃ for A = B = {A}, N = {N}: {n}×{n} entries, "
                 f"{n * n - counts['0']} non-zero, all built from the {2 * N * N} numbers in W and C",
                 fontsize=9)
    handles = [Patch(color=colors[k], label=f"{name} ({counts[name]})")
               for k, name in enumerate(CASE_NAMES)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              title="Eq. 4 case", title_fontsize=8)
    ax.figure.tight_layout()
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
        _, ax = plt.subplots(figsize=(6.5, 4.0))
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
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def figure_explorer(controls, make_figure, layout=None):
    """Wire ipywidgets ``controls`` to a figure: ``make_figure()`` draws the current view
    (reading the controls' values) into an Output, redrawn whenever a control changes.

    Args:
        controls: the value widgets to observe.
        make_figure: called with no arguments; returns a matplotlib Figure.
        layout: rows above the figure (widgets or boxes); default one row of ``controls``.

    Returns:
        A ``VBox`` of the layout and the figure.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = widgets.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            fig = make_figure()
            display(fig)
            plt.close(fig)

    for w in controls:
        w.observe(draw, names="value")
    draw()
    rows = layout if layout is not None else [widgets.HBox(list(controls))]
    return widgets.VBox([*rows, out])


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


def markdown_table(rows: Sequence[dict], float_format: str = ".3g") -> str:
    """A Markdown table of ``rows`` (dicts with the same keys, in column order); floats are
    written with ``float_format`` and ints with thousands separators. Display it with
    ``IPython.display.Markdown``."""
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    columns = list(rows[0])

    def text(v) -> str:
        return str(v).replace("|", "\\|")  # a bare | would split the cell

    def cell(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return text(v)
        return f"{v:,}" if isinstance(v, int) else format(v, float_format)

    lines = ["| " + " | ".join(map(text, columns)) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


# --- Chapter 2: cloning neural forward computation (Figure 4) --------------------------------

#: Weights drawn as lines in Figure 4 (left).
FIGURE4_WEIGHTS = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)


def plot_forward_clone_lines(lstm, cfg, bias: float = 0.0, weights=FIGURE4_WEIGHTS,
                             x_max: Optional[float] = None, ax=None):
    """Figure 4 (left): the sub-LSTM's output against ``x`` for several stored ``w`` (solid),
    the target ``tanh(x)·w + b`` dashed. Returns the Figure."""
    import matplotlib.pyplot as plt
    import torch

    from . import cloning

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.0))
    x_max = 3 * cfg.data.random_std if x_max is None else x_max
    x = torch.linspace(-x_max, x_max, 200)
    colors = plt.cm.coolwarm(torch.linspace(0, 1, len(weights)).numpy())
    for w, color in zip(weights, colors):
        wv, bv = torch.full_like(x, w), torch.full_like(x, bias)
        with torch.no_grad():
            y = cloning.predict(lstm, x, wv, bv, cfg.forward_cloning.ticks)
        ax.plot(x, y, color=color, lw=2, label=f"w = {w:g}")
        ax.plot(x, cloning.target(x, wv, bv), color=color, lw=1.2, ls="--")
    ax.set_xlabel("input x")
    ax.set_ylabel("output (solid: sub-LSTM, dashed: tanh(x)·w + b)")
    ax.set_title(f"Forward computation, b = {bias:g}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return ax.figure


def plot_forward_clone_error(lstm, cfg, bias: float = 0.0, x_max: Optional[float] = None,
                             ax=None, vmax: Optional[float] = None):
    """Figure 4 (right): heat-map of ``|output - target|`` over ``(x, w)``. Returns the Figure."""
    import matplotlib.pyplot as plt

    from . import cloning

    xs, ws, y, t = cloning.grid_predictions(lstm, cfg, bias, x_max)
    err = (y - t).abs()  # [gx, gw]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.0))
    im = ax.imshow(err.T.numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=vmax,
                   extent=(xs[0].item(), xs[-1].item(), ws[0].item(), ws[-1].item()))
    ax.figure.colorbar(im, ax=ax, label="|output - target|")
    ax.set_xlabel("input x")
    ax.set_ylabel("stored weight w")
    ax.set_title(f"Error, b = {bias:g}: mean {err.mean():.3f}, max {err.max():.3f}")
    return ax.figure


def plot_figure4(lstm, cfg, bias: float = 0.0, x_max: Optional[float] = None):
    """Both panels of Figure 4 side by side. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    plot_forward_clone_lines(lstm, cfg, bias=bias, x_max=x_max, ax=left)
    plot_forward_clone_error(lstm, cfg, bias=bias, x_max=x_max, ax=right)
    fig.tight_layout()
    return fig


def plot_loss_curve(steps: Sequence[int], losses: Sequence[float], title: str = "", ax=None):
    """A training loss curve on a log scale. Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.5))
    ax.plot(steps, losses)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("Smooth L1 loss")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.figure.tight_layout()
    return ax.figure


def forward_clone_explorer(trained, untrained, cfg, bias: float = 0.0):
    """An ipywidgets explorer of Figure 4: bias, input range, and trained versus untrained
    sub-LSTM. Returns the widget; :func:`plot_figure4` is its static twin."""
    import ipywidgets as widgets

    r = cfg.forward_cloning.param_range
    bias_slider = widgets.FloatSlider(value=bias, min=-r, max=r, step=0.25, description="bias b")
    range_slider = widgets.FloatSlider(value=3 * cfg.data.random_std, min=1.0, max=12.0, step=0.5,
                                       description="|x| up to")
    which = widgets.ToggleButtons(options=["trained", "untrained"], value="trained")
    return figure_explorer(
        [bias_slider, range_slider, which],
        lambda: plot_figure4(trained if which.value == "trained" else untrained, cfg,
                             bias=bias_slider.value, x_max=range_slider.value),
        layout=[widgets.HBox([bias_slider, range_slider]), which])
