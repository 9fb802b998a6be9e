"""Chapter 6: improving cloned backprop with CMA-ES (Figure 9)."""

from __future__ import annotations

from typing import Optional, Sequence

from .common import PAGE_WIDTH, LOSS_SMOOTHING, band, figure_explorer, legend_below, smoothed

#: Colour of each learner in Chapter 6's figures.
IMPROVE_COLORS = {"clone": "#1f77b4", "improved": "#ff7f0e", "sgd": "#7f7f7f"}


def plot_search(history: dict, ax=None):
    """The CMA-ES search (:func:`vsml_lite.improve.search`): per generation, the objective of
    the CMA-ES mean and of the starting clone on that generation's task, the best candidate,
    and the step size sigma (right axis)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
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
    # Below the axes, so it never covers the curves; generations are whole numbers.
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=10, ncol=2, loc="upper center",
              bbox_to_anchor=(0.5, -0.22))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
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

    from ..improve import LABELS

    if axes is None:
        _, axes = plt.subplots(len(datasets), 2, figsize=(PAGE_WIDTH, 3.2 * len(datasets)), squeeze=False)
    names = {"mnist": "MNIST (searched on)", "fashion_mnist": "Fashion-MNIST (never seen)"}
    for row, ds in zip(axes, datasets):
        for name in learners:
            c = curves[ds][name]
            loss, acc = np.asarray(c["train_loss"], float), np.asarray(c["test_accuracy"], float)
            if seeds is not None:
                loss, acc = loss[list(seeds)], acc[list(seeds)]
            x, smooth = smoothed(steps[ds]["steps"], loss, k=max(1, min(LOSS_SMOOTHING, loss.shape[1] // 20)))
            band(row[0], x, smooth, IMPROVE_COLORS[name], LABELS[name])
            band(row[1], steps[ds]["eval_steps"], 100 * acc, IMPROVE_COLORS[name], LABELS[name])
        row[0].set_ylabel("training loss")
        row[1].set_ylabel("test accuracy (%)")
        for a in row:
            a.set_title(names.get(ds, ds), fontsize=10)
            a.set_xlabel("learner step")
            a.grid(alpha=0.3)
    axes[0][0].figure.tight_layout()
    legend_below(axes[0][0].figure, ncol=3)
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
