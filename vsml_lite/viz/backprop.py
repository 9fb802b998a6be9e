"""Chapter 4: cloning backpropagation (Figures 5, 7, 8, 9), fidelity and holding."""

from __future__ import annotations

from typing import Optional, Sequence

from .common import PAGE_WIDTH, band, figure_explorer, legend_below, smoothed

#: Colours of the cloned learner and of plain SGD in the learning-curve figures.
CLONE_COLOR, SGD_COLOR = "#1f77b4", "#7f7f7f"
#: Colour bands of the curriculum stages in the cloning loss figure.
STAGE_COLORS = {"local": "#fde0dd", "shallow": "#e5f5e0", "deep_gt": "#deebf7", "deep_own": "#efedf5"}


def plot_cloning_curves(curves: dict, ax=None):
    """The three cloning losses against iteration, with the curriculum stages shaded
    (Appendix B). ``curves`` as recorded by :func:`vsml_lite.backprop.train_backprop_cloning`."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.6))
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
    ax.grid(alpha=0.3, which="both")
    ax.figure.tight_layout()
    legend_below(ax.figure, handles, ncol=4)
    return ax.figure




def plot_learning_curves(curves: dict, title: str = "", axes=None, paper_accuracy: Optional[float] = None,
                         legend: bool = True):
    """Test accuracy and training loss against learner step, cloned learner versus SGD, mean ±
    std over seeds (the layout of Figures 5, 7, 8, 9). ``curves`` is one run's entry of the
    artifact's ``learning_curves`` (tensors ``clone_test_accuracy [S, P]``, ...); ``legend``:
    put the legend below the figure (a grid of runs puts one below all of them)."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.3))
    acc_ax, loss_ax = axes
    ev = [int(s) for s in curves["eval_steps"]]
    band(acc_ax, ev, curves["clone_test_accuracy"], CLONE_COLOR, "cloned backprop (VS Meta RNN)")
    band(acc_ax, ev, curves["sgd_test_accuracy"], SGD_COLOR, "SGD (autograd)")
    if paper_accuracy is not None:
        acc_ax.axhline(paper_accuracy, color=CLONE_COLOR, ls=":", lw=1, label="paper's clone")
    acc_ax.set_xlabel("learner step (batch of 64)")
    acc_ax.set_ylabel("test accuracy")
    acc_ax.set_ylim(0, 1)
    steps = [int(s) for s in curves["steps"]]
    for key, color, label in (("clone_train_loss", CLONE_COLOR, "cloned"), ("sgd_train_loss", SGD_COLOR, "SGD")):
        x, v = smoothed(steps, curves[key])
        band(loss_ax, x, v, color, label)
    loss_ax.set_xlabel("learner step")
    loss_ax.set_ylabel("training loss (cross-entropy)")
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        acc_ax.set_title(title, fontsize=10, loc="left")
    acc_ax.figure.tight_layout()
    if legend:
        legend_below(acc_ax.figure)
    return acc_ax.figure


def plot_learning_curve_grid(learning_curves: dict, keys: Sequence[str], paper: Optional[dict] = None):
    """One row of :func:`plot_learning_curves` per run key (``clone/dataset/arrangement``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(keys), 2, figsize=(PAGE_WIDTH, 3.0 * len(keys)), squeeze=False)
    for row, key in zip(axes, keys):
        clone, dataset, arch = key.split("/")
        ref = (paper or {}).get((dataset, arch)) if clone == "curriculum" else None
        plot_learning_curves(learning_curves[key], title=key, axes=row, paper_accuracy=ref, legend=False)
    fig.tight_layout()
    legend_below(fig, max((row[0].get_legend_handles_labels()[0] for row in axes), key=len))
    return fig


def plot_fidelity_scatter(pairs: dict, ax_row=None):
    """Scatter of the clone's values against autograd's (one panel per quantity), with the
    diagonal. ``pairs``: ``{name: (clone_values, autograd_values)}``."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax_row is None:  # two panels per row, so the figure spans the page, not more
        rows = -(-len(pairs) // 2)
        _, grid = plt.subplots(rows, 2, figsize=(PAGE_WIDTH, 3.2 * rows), squeeze=False)
        ax_row = grid.ravel()
        for spare in ax_row[len(pairs):]:
            spare.set_visible(False)
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
        _, ax = plt.subplots(1, len(drifts), figsize=(PAGE_WIDTH, 3.2), squeeze=False)
        ax = ax[0]
    for a, (name, d) in zip(ax, drifts.items()):
        for j, w in enumerate(d["weights"].tolist()):
            a.plot(d["steps"], d["ratio"][:, j], label=f"w = {w:+.1f}")
        a.axhline(1.0, color="k", lw=0.8, ls="--")
        a.set_xlabel("learner step with no error")
        a.set_ylabel("weight held / weight at start")
        a.set_title(name, fontsize=10)
        a.grid(alpha=0.3)
    ax[0].figure.tight_layout()
    legend_below(ax[0].figure, ncol=3)
    return ax[0].figure


def plot_update_response(responses: dict, axes=None):
    """One connection's weight change in one step against backpropagation's, in units of
    ``-η · e`` (so backpropagation is ``tanh x`` for every error ``e``), one panel per clone.
    ``responses``: ``{name: vsml_lite.backprop.update_response(...)}``."""
    import matplotlib.pyplot as plt
    import numpy as np

    if axes is None:
        _, axes = plt.subplots(1, len(responses), figsize=(PAGE_WIDTH, 3.6), squeeze=False)
        axes = axes[0]
    for ax, (name, r) in zip(np.atleast_1d(axes), responses.items()):
        x = r["x"].numpy()
        ax.plot(x, r["target"].numpy(), color="k", lw=2, ls="--", label="backprop: tanh x")
        for e, row in zip(r["errors"].tolist(), r["weight"].numpy()):
            ax.plot(x, row, marker="o", ms=3, label=f"clone, e = {e:+g}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("input x")
        ax.set_ylabel("weight change / (-η e)")
        ax.set_title(f"{name} clone", fontsize=10)
        ax.grid(alpha=0.3)
    fig = np.atleast_1d(axes)[0].figure
    fig.tight_layout()
    legend_below(fig, ncol=3)
    return fig
