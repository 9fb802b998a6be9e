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


# --- Chapter 3: cloning backpropagation (Figures 5, 7, 8, 9) ---------------------------------

#: Colours of the cloned learner and of plain SGD in the learning-curve figures.
CLONE_COLOR, SGD_COLOR = "#1f77b4", "#7f7f7f"
#: Colour bands of the curriculum stages in the cloning loss figure.
STAGE_COLORS = {"local": "#fde0dd", "shallow": "#e5f5e0", "deep_gt": "#deebf7", "deep_own": "#efedf5"}
#: Steps averaged into one point of a plotted training-loss curve.
LOSS_SMOOTHING = 10


def plot_cloning_curves(curves: dict, ax=None):
    """The three cloning losses against iteration, with the curriculum stages shaded
    (Appendix B). ``curves`` as recorded by :func:`vsml_lite.backprop.train_backprop_cloning`."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.6))
    from matplotlib.patches import Patch

    its, stages = curves["iteration"], curves["stage"]
    start, shaded = 0, []
    for i, (it, st) in enumerate(zip(its, stages)):
        if i + 1 == len(its) or stages[i + 1] != st:
            ax.axvspan(start, it, color=STAGE_COLORS.get(st, "#eeeeee"), lw=0)
            shaded.append(st)
            start = it
    for key, label in (("forward", "forward outputs"), ("backward", "backward errors"),
                       ("update", "weight updates")):
        ax.plot(its, curves[key], label=label)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(color=STAGE_COLORS.get(st, "#eeeeee"), label=f"stage {st}") for st in shaded]
    ax.set_yscale("log")
    ax.set_xlabel("cloning iteration (Adam step)")
    ax.set_ylabel("Smooth L1 loss")
    ax.legend(handles=handles, fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    ax.figure.tight_layout()
    return ax.figure


def _band(ax, x, values, color, label):
    """Mean ± std over the first axis of ``values [S, T]``."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    m, s = v.mean(0), v.std(0)
    ax.plot(x, m, color=color, label=label)
    ax.fill_between(x, m - s, m + s, color=color, alpha=0.25, lw=0)


def _smoothed(steps, loss, k: int = LOSS_SMOOTHING):
    """Average ``loss [S, T]`` over windows of ``k`` steps; returns ``(x, [S, T // k])``."""
    import numpy as np

    loss = np.asarray(loss, dtype=float)
    T = loss.shape[1] // k * k
    if T == 0:
        return np.asarray(steps), loss
    return np.asarray(steps[:T]).reshape(-1, k).mean(1), loss[:, :T].reshape(loss.shape[0], -1, k).mean(2)


def plot_learning_curves(curves: dict, title: str = "", axes=None, paper_accuracy: Optional[float] = None):
    """Test accuracy and training loss against learner step, cloned learner versus SGD, mean ±
    std over seeds (the layout of Figures 5, 7, 8, 9). ``curves`` is one run's entry of the
    artifact's ``learning_curves`` (tensors ``clone_test_accuracy [S, P]``, ...)."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.3))
    acc_ax, loss_ax = axes
    ev = [int(s) for s in curves["eval_steps"]]
    _band(acc_ax, ev, curves["clone_test_accuracy"], CLONE_COLOR, "cloned backprop (VS Meta RNN)")
    _band(acc_ax, ev, curves["sgd_test_accuracy"], SGD_COLOR, "SGD (autograd)")
    if paper_accuracy is not None:
        acc_ax.axhline(paper_accuracy, color=CLONE_COLOR, ls=":", lw=1, label="paper's clone")
    acc_ax.set_xlabel("learner step (batch of 64)")
    acc_ax.set_ylabel("test accuracy")
    acc_ax.set_ylim(0, 1)
    steps = [int(s) for s in curves["steps"]]
    for key, color, label in (("clone_train_loss", CLONE_COLOR, "cloned"), ("sgd_train_loss", SGD_COLOR, "SGD")):
        x, v = _smoothed(steps, curves[key])
        _band(loss_ax, x, v, color, label)
    loss_ax.set_xlabel("learner step")
    loss_ax.set_ylabel("training loss (cross-entropy)")
    for ax in axes:
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=7, loc="lower right")
    if title:
        acc_ax.set_title(title, fontsize=10, loc="left")
    acc_ax.figure.tight_layout()
    return acc_ax.figure


def plot_learning_curve_grid(learning_curves: dict, keys: Sequence[str], paper: Optional[dict] = None):
    """One row of :func:`plot_learning_curves` per run key (``clone/dataset/arrangement``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(keys), 2, figsize=(9.0, 3.0 * len(keys)), squeeze=False)
    for row, key in zip(axes, keys):
        clone, dataset, arch = key.split("/")
        ref = (paper or {}).get((dataset, arch)) if clone == "curriculum" else None
        plot_learning_curves(learning_curves[key], title=key, axes=row, paper_accuracy=ref)
    fig.tight_layout()
    return fig


def plot_fidelity_scatter(pairs: dict, ax_row=None):
    """Scatter of the clone's values against autograd's (one panel per quantity), with the
    diagonal. ``pairs``: ``{name: (clone_values, autograd_values)}``."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax_row is None:
        _, ax_row = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3.2))
    for ax, (name, (c, t)) in zip(np.atleast_1d(ax_row), pairs.items()):
        c, t = np.asarray(c).ravel(), np.asarray(t).ravel()
        ax.scatter(t, c, s=3, alpha=0.4)
        lo, hi = min(t.min(), c.min()), max(t.max(), c.max())
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
        ax.set_xlabel("autograd")
        ax.set_ylabel("VS Meta RNN")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    fig = np.atleast_1d(ax_row)[0].figure
    fig.tight_layout()
    return fig


def learning_curves_explorer(learning_curves: dict, paper: Optional[dict] = None):
    """An ipywidgets explorer of the meta-test runs: pick the clone, dataset and arrangement
    and the seeds to show. Returns the widget; :func:`plot_learning_curves` is its static twin."""
    import ipywidgets as widgets

    keys = list(learning_curves)
    run = widgets.Dropdown(options=keys, value=keys[0], description="run")
    n_seeds = learning_curves[keys[0]]["clone_test_accuracy"].shape[0]
    seeds = widgets.IntRangeSlider(value=(0, n_seeds - 1), min=0, max=n_seeds - 1, description="seeds")

    def figure():
        lo, hi = seeds.value
        c = {k: (v[lo:hi + 1] if k.endswith(("accuracy", "loss")) else v)
             for k, v in learning_curves[run.value].items()}
        clone, dataset, arch = run.value.split("/")
        ref = (paper or {}).get((dataset, arch)) if clone == "curriculum" else None
        return plot_learning_curves(c, title=f"{run.value}, seeds {lo}-{hi}", paper_accuracy=ref)

    return figure_explorer([run, seeds], figure)


def plot_hold_drift(drifts: dict, ax=None):
    """Weight read from the state over its starting weight against learner step, with no error
    arriving (:func:`vsml_lite.backprop.hold_drift`), one panel per clone. 1 is a perfect hold."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, len(drifts), figsize=(4.5 * len(drifts), 3.2), squeeze=False)
        ax = ax[0]
    for a, (name, d) in zip(ax, drifts.items()):
        for j, w in enumerate(d["weights"].tolist()):
            a.plot(d["steps"], d["ratio"][:, j], label=f"w = {w:+.1f}")
        a.axhline(1.0, color="k", lw=0.8, ls="--")
        a.set_xlabel("learner step with no error")
        a.set_ylabel("weight held / weight at start")
        a.set_title(name, fontsize=10)
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=7)
    ax[0].figure.tight_layout()
    return ax[0].figure


# --- Chapter 4: meta-learning a learning algorithm from scratch (Figure 6) -------------------

#: Colour of each model in Chapter 4's figures.
META_COLORS = {"vsml": "#1f77b4", "meta_rnn": "#ff7f0e", "adam_linear": "#2ca02c", "adam_mlp": "#7f7f7f"}


def plot_meta_training(curves: dict, ax=None):
    """Meta-training curves (:func:`vsml_lite.metalearn.meta_train`): the episode's mean
    cross-entropy and online accuracy against meta-training iteration, one line per model.
    ``curves``: ``{model: {"steps", "loss", "accuracy"}}``."""
    import matplotlib.pyplot as plt

    from .metalearn import LABELS

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, c in curves.items():
        color = META_COLORS.get(name)
        ax[0].plot(c["steps"], c["loss"], color=color, label=LABELS.get(name, name))
        ax[1].plot(c["steps"], [100 * a for a in c["accuracy"]], color=color, label=LABELS.get(name, name))
    ax[0].set_ylabel("mean cross-entropy per step")
    ax[1].set_ylabel("accuracy within the episode (%)")
    for a in ax:
        a.set_xlabel("meta-training iteration")
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=8)
    ax[0].figure.tight_layout()
    return ax[0].figure


def plot_figure6(curves: dict, models: Sequence[str], datasets=("mnist", "fashion_mnist"),
                 steps: Optional[int] = None, mark: Optional[int] = None, axes=None):
    """Figure 6: accuracy over all previous inputs against step, mean ± std over streams, one
    panel per dataset. ``curves``: ``{"<model>/<dataset>": {"accuracy": [T, S]}}``; ``steps``
    cuts the horizon; ``mark`` draws a vertical line (the meta-training episode length)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .metalearn import LABELS

    if axes is None:
        _, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.6), squeeze=False)
        axes = axes[0]
    titles = {"mnist": "MNIST (meta-training distribution)", "fashion_mnist": "Fashion-MNIST (unseen)"}
    for ax, ds in zip(axes, datasets):
        for name in models:
            acc = np.asarray(curves[f"{name}/{ds}"]["accuracy"], dtype=float)[:steps]  # [T, S]
            _band(ax, np.arange(1, acc.shape[0] + 1), 100 * acc.T, META_COLORS.get(name), LABELS.get(name, name))
        if mark is not None:
            ax.axvline(mark, color="k", lw=0.8, ls=":")
        ax.set_ylim(0, 100)  # the ± std band of the first steps would reach below 0
        ax.set_title(titles.get(ds, ds), fontsize=10)
        ax.set_xlabel("step (one image per step)")
        ax.set_ylabel("accuracy over all previous inputs (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].figure.tight_layout()
    return axes[0].figure


def plot_lr_search(lr_search: dict, ax=None):
    """Online Adam's accuracy over the first steps of MNIST training streams against learning
    rate (:func:`vsml_lite.metalearn.choose_learning_rate`); the chosen rate is circled."""
    import matplotlib.pyplot as plt

    from .metalearn import LABELS

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for name, r in lr_search.items():
        lrs = sorted(r["scores"])
        ax.plot(lrs, [100 * r["scores"][lr] for lr in lrs], "o-", color=META_COLORS.get(name),
                label=LABELS.get(name, name))
        ax.plot([r["lr"]], [100 * r["scores"][r["lr"]]], "o", ms=12, mfc="none", color=META_COLORS.get(name))
    ax.set_xscale("log")
    ax.set_xlabel("Adam learning rate")
    ax.set_ylabel("accuracy, MNIST training streams (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def plot_inside_step(trace: dict, step: int, dim: int, side: int, show: Sequence[int] = (0, 1, 7), axes=None):
    """What the VSML learner holds after ``step`` steps of a meta-test stream
    (:func:`vsml_lite.metalearn.trace_episode`): for output units ``show``, the unit-specific
    part (:func:`vsml_lite.metalearn.unit_specific`) of cell dimension ``dim`` of their
    columns of sub-LSTMs, drawn as ``side × side`` images (where a linear classifier keeps its
    weights); the prediction at that step; the running accuracy."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .metalearn import unit_specific

    spec = unit_specific(trace["cells"])[..., dim]  # [T + 1, A, U]
    units = trace["units"].tolist()
    cols = [units.index(u) for u in show]
    T = trace["probs"].shape[0]
    step = int(min(max(step, 0), T))
    if axes is None:
        fig = plt.figure(figsize=(2.3 * len(cols) + 7.0, 2.7))
        grid = fig.add_gridspec(1, len(cols) + 2, width_ratios=[1] * len(cols) + [1.5, 1.8])
        axes = [fig.add_subplot(grid[0, k]) for k in range(len(cols) + 2)]
    lim = float(spec[:, :, cols].abs().max()) or 1.0
    for ax, j in zip(axes, cols):
        ax.imshow(spec[step, :, j].reshape(side, side).numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"unit {units[j]}, dim {dim}, step {step}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    bars = axes[len(cols)]
    if step > 0:
        p = trace["probs"][step - 1].numpy()
        label = int(trace["labels"][step - 1])
        colors = ["#2ca02c" if k == label else "#1f77b4" for k in range(len(p))]
        bars.bar(np.arange(len(p)), p, color=colors)
        bars.set_title(f"prediction at step {step} (label {label} green)", fontsize=9)
    else:
        bars.set_title("no input yet", fontsize=9)
    bars.set_ylim(0, 1)
    bars.set_xticks(range(10))
    acc = axes[len(cols) + 1]
    acc.plot(np.arange(1, T + 1), 100 * trace["accuracy"].numpy(), color=META_COLORS["vsml"])
    if step > 0:
        acc.axvline(step, color="k", lw=0.8)
    acc.set_ylim(0, 100)
    acc.set_xlabel("step")
    acc.set_title("accuracy over all previous inputs (%)", fontsize=9)
    acc.grid(alpha=0.3)
    axes[0].figure.tight_layout()
    return axes[0].figure


def plot_inside_snapshots(trace: dict, steps: Sequence[int], dim: int, side: int, show: Sequence[int] = (0, 1, 7)):
    """The static twin of :func:`inside_explorer`: :func:`plot_inside_step` at several steps,
    one row each."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2.3 * len(show) + 7.0, 2.5 * len(steps)))
    grid = fig.add_gridspec(len(steps), len(show) + 2, width_ratios=[1] * len(show) + [1.5, 1.8])
    for r, s in enumerate(steps):
        plot_inside_step(trace, s, dim, side, show,
                         axes=[fig.add_subplot(grid[r, k]) for k in range(len(show) + 2)])
    fig.tight_layout()
    return fig


def plot_templates(trace: dict, dim: int, side: int, ax_rows=None):
    """Top: the average image of each class in the stream, minus the average of all images.
    Bottom: the unit-specific part of cell dimension ``dim`` of each output unit's column at
    the end of the stream, multiplied by -1 where that dimension correlates negatively with
    the images (the sign is the network's convention). Beside them, the correlation of the two for every dimension
    (:func:`vsml_lite.metalearn.template_correlation`)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .metalearn import template_correlation, unit_specific

    units = trace["units"].tolist()
    r = template_correlation(trace).numpy()
    sign = -1.0 if r[dim] < 0 else 1.0  # draw the state with the sign that matches the images
    spec = sign * unit_specific(trace["cells"][-1])[..., dim]  # [A, U]
    images, labels = trace["images"], trace["labels"]
    fig = plt.figure(figsize=(1.3 * len(units) + 3.6, 3.0))
    grid = fig.add_gridspec(2, len(units) + 1, width_ratios=[1] * len(units) + [2.6])
    overall = images.mean(0)
    for j, u in enumerate(units):
        top, bottom = fig.add_subplot(grid[0, j]), fig.add_subplot(grid[1, j])
        seen = labels == u
        if seen.any():
            t = (images[seen].mean(0) - overall).reshape(side, side).numpy()
            top.imshow(t, cmap="RdBu_r", vmin=-np.abs(t).max(), vmax=np.abs(t).max())
        v = spec[:, j].reshape(side, side).numpy()
        bottom.imshow(v, cmap="RdBu_r", vmin=-np.abs(v).max(), vmax=np.abs(v).max())
        top.set_title(f"class {u}" + ("" if seen.any() else " (unseen)"), fontsize=8)
        for a in (top, bottom):
            a.set_xticks([])
            a.set_yticks([])
    fig.axes[0].set_ylabel("images", fontsize=8)
    fig.axes[1].set_ylabel(f"state, dim {dim}" + (" (× −1)" if sign < 0 else ""), fontsize=8)
    bars = fig.add_subplot(grid[:, -1])
    bars.bar(np.arange(len(r)), r, color=["#d62728" if k == dim else "#1f77b4" for k in range(len(r))])
    bars.axhline(0, color="k", lw=0.6)
    bars.set_ylim(-1, 1)
    bars.set_xlabel("cell dimension")
    bars.set_title("correlation with class images", fontsize=9)
    fig.tight_layout()
    return fig


def inside_explorer(trace: dict, side: int, dim: int = 0, show: Sequence[int] = (0, 1, 7)):
    """An ipywidgets explorer that steps through a meta-test stream: a step slider and a cell
    dimension menu over :func:`plot_inside_step`. Returns the widget."""
    import ipywidgets as widgets

    T, H = trace["probs"].shape[0], trace["cells"].shape[-1]
    step = widgets.IntSlider(value=min(10, T), min=0, max=T, description="step")
    d = widgets.Dropdown(options=list(range(H)), value=dim, description="cell dim")
    return figure_explorer([step, d], lambda: plot_inside_step(trace, step.value, d.value, side, show))


# --- Chapter 5: improving cloned backprop with CMA-ES (Figure 9) -----------------------------

#: Colour of each learner in Chapter 5's figures.
IMPROVE_COLORS = {"clone": "#1f77b4", "improved": "#ff7f0e", "sgd": "#7f7f7f"}


def plot_search(history: dict, ax=None):
    """The CMA-ES search (:func:`vsml_lite.improve.search`): per generation, the objective of
    the CMA-ES mean and of the starting clone on that generation's task, the best candidate,
    and the step size sigma (right axis)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    g = history["generation"]
    ax.plot(g, history["clone_loss"], color=IMPROVE_COLORS["clone"], label="starting clone")
    ax.plot(g, history["mean_loss"], color=IMPROVE_COLORS["improved"], label="CMA-ES mean")
    ax.plot(g, history["best_loss"], color=IMPROVE_COLORS["improved"], ls=":", label="best candidate")
    ax.set_xlabel("generation")
    ax.set_ylabel("mean cross-entropy over the unroll")
    ax.grid(alpha=0.3)
    right = ax.twinx()
    right.plot(g, history["sigma"], color="k", lw=0.8, ls="--", label="step size σ")
    right.set_ylabel("σ")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def plot_figure9(curves: dict, steps: dict, learners=("clone", "improved", "sgd"),
                 datasets=("mnist", "fashion_mnist"), seeds: Optional[Sequence[int]] = None, axes=None):
    """Figure 9: training loss (averaged over windows of steps) and test accuracy against
    learner step, mean ± std over seeds, one row per dataset.

    ``curves[dataset][learner]``: ``{"train_loss" [S, T], "test_accuracy" [S, P]}``;
    ``steps[dataset]``: ``{"steps", "eval_steps"}``; ``seeds`` selects a subset."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .improve import LABELS

    if axes is None:
        _, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.2 * len(datasets)), squeeze=False)
    names = {"mnist": "MNIST (searched on)", "fashion_mnist": "Fashion-MNIST (never seen)"}
    for row, ds in zip(axes, datasets):
        for name in learners:
            c = curves[ds][name]
            loss, acc = np.asarray(c["train_loss"], float), np.asarray(c["test_accuracy"], float)
            if seeds is not None:
                loss, acc = loss[list(seeds)], acc[list(seeds)]
            x, smooth = _smoothed(steps[ds]["steps"], loss, k=max(1, min(LOSS_SMOOTHING, loss.shape[1] // 20)))
            _band(row[0], x, smooth, IMPROVE_COLORS[name], LABELS[name])
            _band(row[1], steps[ds]["eval_steps"], 100 * acc, IMPROVE_COLORS[name], LABELS[name])
        row[0].set_ylabel("training loss")
        row[1].set_ylabel("test accuracy (%)")
        for a in row:
            a.set_title(names.get(ds, ds), fontsize=10)
            a.set_xlabel("learner step")
            a.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    axes[0][0].figure.tight_layout()
    return axes[0][0].figure


def figure9_explorer(curves: dict, steps: dict):
    """An ipywidgets explorer of Figure 9: pick the dataset, the learners and the seeds.
    Returns the widget; :func:`plot_figure9` is its static twin."""
    import ipywidgets as widgets

    datasets = list(curves)
    first = curves[datasets[0]]["clone"]["train_loss"]
    ds = widgets.Dropdown(options=datasets, value=datasets[0], description="dataset")
    who = widgets.SelectMultiple(options=["clone", "improved", "sgd"], value=("clone", "improved", "sgd"),
                                 description="learners", rows=3)
    seeds = widgets.IntRangeSlider(value=(0, first.shape[0] - 1), min=0, max=first.shape[0] - 1, description="seeds")

    def figure():
        lo, hi = seeds.value
        return plot_figure9(curves, steps, learners=who.value or ("clone",), datasets=(ds.value,),
                            seeds=range(lo, hi + 1))

    return figure_explorer([ds, who, seeds], figure)
