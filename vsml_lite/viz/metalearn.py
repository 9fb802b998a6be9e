"""Chapter 5: meta-learning from scratch (Figure 6) and inside the network."""

from __future__ import annotations

from typing import Optional, Sequence

from .common import PAGE_WIDTH, band, figure_explorer, legend_below

#: Colour of each model in Chapter 5's figures.
META_COLORS = {"vsml": "#1f77b4", "vsml_layernorm": "#9467bd", "meta_rnn_fixed": "#d62728",
               "meta_rnn": "#ff7f0e", "adam_linear": "#2ca02c", "adam_mlp": "#7f7f7f"}


def plot_meta_training(curves: dict, ax=None):
    """Meta-training curves (:func:`vsml_lite.metalearn.meta_train`): the episode's mean
    cross-entropy and online accuracy against meta-training iteration, one line per model.
    ``curves``: ``{model: {"steps", "loss", "accuracy"}}``."""
    import matplotlib.pyplot as plt

    from ..metalearn import LABELS

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.4))
    for name, c in curves.items():
        color = META_COLORS.get(name)
        ax[0].plot(c["steps"], c["loss"], color=color, label=LABELS.get(name, name))
        ax[1].plot(c["steps"], [100 * a for a in c["accuracy"]], color=color, label=LABELS.get(name, name))
    ax[0].set_ylabel("mean cross-entropy per step")
    ax[1].set_ylabel("accuracy within the episode (%)")
    for a in ax:
        a.set_xlabel("meta-training iteration")
        a.grid(alpha=0.3)
    ax[0].figure.tight_layout()
    legend_below(ax[0].figure, ncol=2)
    return ax[0].figure


def plot_figure6(curves: dict, models: Sequence[str], datasets=("mnist", "fashion_mnist"),
                 steps: Optional[int] = None, mark: Optional[int] = None, axes=None):
    """Figure 6: accuracy over all previous inputs against step, mean ± std over streams, one
    panel per dataset. ``curves``: ``{"<model>/<dataset>": {"accuracy": [T, S]}}``; ``steps``
    cuts the horizon; ``mark`` draws a vertical line (the meta-training episode length)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..metalearn import LABELS

    if axes is None:
        _, axes = plt.subplots(1, len(datasets), figsize=(PAGE_WIDTH, 3.6), squeeze=False)
        axes = axes[0]
    titles = {"mnist": "MNIST (meta-training distribution)", "fashion_mnist": "Fashion-MNIST (unseen)"}
    for ax, ds in zip(axes, datasets):
        for name in models:
            acc = np.asarray(curves[f"{name}/{ds}"]["accuracy"], dtype=float)[:steps]  # [T, S]
            band(ax, np.arange(1, acc.shape[0] + 1), 100 * acc.T, META_COLORS.get(name), LABELS.get(name, name))
        if mark is not None:
            ax.axvline(mark, color="k", lw=0.8, ls=":")
        ax.set_ylim(0, 100)  # the ± std band of the first steps would reach below 0
        ax.set_title(titles.get(ds, ds), fontsize=10)
        ax.set_xlabel("step (one image per step)")
        ax.set_ylabel("accuracy over all previous inputs (%)")
        ax.grid(alpha=0.3)
    axes[0].figure.tight_layout()
    legend_below(axes[0].figure, ncol=2)
    return axes[0].figure


def plot_lr_search(lr_search: dict, ax=None):
    """Online Adam's accuracy over the first steps of MNIST training streams against learning
    rate (:func:`vsml_lite.metalearn.choose_learning_rate`); the chosen rate is circled."""
    import matplotlib.pyplot as plt

    from ..metalearn import LABELS

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
    ax.figure.tight_layout()
    legend_below(ax.figure, ncol=2)
    return ax.figure


def plot_inside_step(trace: dict, step: int, dim: int, side: int, show: Sequence[int] = (0, 1, 7), axes=None):
    """What the VSML learner holds after ``step`` steps of a meta-test stream
    (:func:`vsml_lite.metalearn.trace_episode`): for output units ``show``, the unit-specific
    part (:func:`vsml_lite.metalearn.unit_specific`) of cell dimension ``dim`` of their
    columns of sub-LSTMs, drawn as ``side × side`` images (where a linear classifier keeps its
    weights); the prediction at that step; the running accuracy."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..metalearn import unit_specific

    spec = unit_specific(trace["cells"])[..., dim]  # [T + 1, A, U]
    units = trace["units"].tolist()
    cols = [units.index(u) for u in show]
    T = trace["probs"].shape[0]
    step = int(min(max(step, 0), T))
    if axes is None:
        fig = plt.figure(figsize=(PAGE_WIDTH, 2.4))
        grid = fig.add_gridspec(1, len(cols) + 2, width_ratios=[1] * len(cols) + [1.5, 1.8])
        axes = [fig.add_subplot(grid[0, k]) for k in range(len(cols) + 2)]
    lim = float(spec[:, :, cols].abs().max()) or 1.0
    for ax, j in zip(axes, cols):
        ax.imshow(spec[step, :, j].reshape(side, side).numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"unit {units[j]}, step {step}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    bars = axes[len(cols)]
    if step > 0:
        p = trace["probs"][step - 1].numpy()
        label = int(trace["labels"][step - 1])
        colors = ["#2ca02c" if k == label else "#1f77b4" for k in range(len(p))]
        bars.bar(np.arange(len(p)), p, color=colors)
        bars.set_title(f"prediction (label {label}: green)", fontsize=10)
    else:
        bars.set_title("no input yet", fontsize=10)
    bars.set_ylim(0, 1)
    bars.set_xticks(range(10))
    acc = axes[len(cols) + 1]
    acc.plot(np.arange(1, T + 1), 100 * trace["accuracy"].numpy(), color=META_COLORS["vsml"])
    if step > 0:
        acc.axvline(step, color="k", lw=0.8)
    acc.set_ylim(0, 100)
    acc.set_xlabel("step")
    acc.set_title("accuracy so far (%)", fontsize=10)
    acc.grid(alpha=0.3)
    axes[0].figure.tight_layout()
    return axes[0].figure


def plot_inside_snapshots(trace: dict, steps: Sequence[int], dim: int, side: int, show: Sequence[int] = (0, 1, 7)):
    """The static twin of :func:`inside_explorer`: :func:`plot_inside_step` at several steps,
    one row each."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(PAGE_WIDTH, 2.1 * len(steps)))
    grid = fig.add_gridspec(len(steps), len(show) + 2, width_ratios=[1] * len(show) + [1.5, 1.8])
    for r, s in enumerate(steps):
        plot_inside_step(trace, s, dim, side, show,
                         axes=[fig.add_subplot(grid[r, k]) for k in range(len(show) + 2)])
    fig.tight_layout()
    return fig


def plot_templates(trace: dict, dim: int, side: int, ax_rows=None):
    """For each class, in rows of :data:`TEMPLATE_COLUMNS`: the average image of the class in the
    stream minus the average of all images ("images"), above the unit-specific part of cell
    dimension ``dim`` of that output unit's column at the end of the stream ("state"),
    multiplied by -1 where that dimension correlates negatively with the images (the sign is
    the network's convention). Below, the correlation of the two for every dimension
    (:func:`vsml_lite.metalearn.template_correlation`)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..metalearn import template_correlation, unit_specific

    units = trace["units"].tolist()
    r = template_correlation(trace).numpy()
    sign = -1.0 if r[dim] < 0 else 1.0  # draw the state with the sign that matches the images
    spec = sign * unit_specific(trace["cells"][-1])[..., dim]  # [A, U]
    images, labels = trace["images"], trace["labels"]
    # Two rows of classes (images above states), then the correlations: 7 inches wide, so the
    # page shows the text at about its size (see TEMPLATE_COLUMNS).
    columns = TEMPLATE_COLUMNS
    rows = -(-len(units) // columns)
    fig = plt.figure(figsize=(7.0, 2.9 * rows + 2.4))
    grid = fig.add_gridspec(2 * rows + 1, columns, height_ratios=[1] * (2 * rows) + [1.6])
    overall = images.mean(0)
    for j, u in enumerate(units):
        row, col = divmod(j, columns)
        top, bottom = fig.add_subplot(grid[2 * row, col]), fig.add_subplot(grid[2 * row + 1, col])
        seen = labels == u
        if seen.any():
            t = (images[seen].mean(0) - overall).reshape(side, side).numpy()
            top.imshow(t, cmap="RdBu_r", vmin=-np.abs(t).max(), vmax=np.abs(t).max())
        v = spec[:, j].reshape(side, side).numpy()
        bottom.imshow(v, cmap="RdBu_r", vmin=-np.abs(v).max(), vmax=np.abs(v).max())
        top.set_title(f"class {u}" + ("" if seen.any() else " (unseen)"), fontsize=10)
        for a in (top, bottom):
            a.set_xticks([])
            a.set_yticks([])
        if col == 0:
            top.set_ylabel("images", fontsize=10)
            bottom.set_ylabel(f"state, dim {dim}" + (" (× −1)" if sign < 0 else ""), fontsize=10)
    bars = fig.add_subplot(grid[-1, :])
    bars.bar(np.arange(len(r)), r, color=["#d62728" if k == dim else "#1f77b4" for k in range(len(r))])
    bars.axhline(0, color="k", lw=0.6)
    bars.set_ylim(-1, 1)
    bars.set_xlabel("cell dimension", fontsize=10)
    bars.set_title("correlation of each cell dimension with the class images (red: drawn above)", fontsize=10)
    fig.tight_layout()
    return fig


#: Classes per row in :func:`plot_templates` (two rows of five keep the figure 7 inches wide).
TEMPLATE_COLUMNS = 5


def inside_explorer(trace: dict, side: int, dim: int = 0, show: Sequence[int] = (0, 1, 7)):
    """An ipywidgets explorer that steps through a meta-test stream: a step slider and a cell
    dimension menu over :func:`plot_inside_step`. Returns the widget."""
    import ipywidgets as widgets

    T, H = trace["probs"].shape[0], trace["cells"].shape[-1]
    step = widgets.IntSlider(value=min(10, T), min=0, max=T, description="step")
    d = widgets.Dropdown(options=list(range(H)), value=dim, description="cell dim")
    return figure_explorer([step, d], lambda: plot_inside_step(trace, step.value, d.value, side, show))
