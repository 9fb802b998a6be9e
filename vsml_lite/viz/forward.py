"""Chapter 3: cloning neural forward computation (Figure 4) and loss curves."""

from __future__ import annotations

from typing import Optional, Sequence

from .common import PAGE_WIDTH, figure_explorer

#: Weights drawn as lines in Figure 4 (left).
FIGURE4_WEIGHTS = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)


def plot_forward_clone_lines(lstm, cfg, bias: float = 0.0, weights=FIGURE4_WEIGHTS,
                             x_max: Optional[float] = None, ax=None):
    """Figure 4 (left): the sub-LSTM's output against ``x`` for several stored ``w`` (solid),
    the target ``tanh(x)·w + b`` dashed. Returns the Figure."""
    import matplotlib.pyplot as plt
    import torch

    from .. import cloning

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
    ax.set_xlabel("input x", fontsize=11)
    ax.set_ylabel("output (solid: sub-LSTM,\ndashed: tanh(x)·w + b)", fontsize=11)
    ax.set_title(f"Forward computation, b = {bias:g}", fontsize=11)
    ax.legend(fontsize=10, ncol=2)
    ax.grid(alpha=0.3)
    return ax.figure


def plot_forward_clone_error(lstm, cfg, bias: float = 0.0, x_max: Optional[float] = None,
                             ax=None, vmax: Optional[float] = None):
    """Figure 4 (right): heat-map of ``|output - target|`` over ``(x, w)``. Returns the Figure."""
    import matplotlib.pyplot as plt

    from .. import cloning

    xs, ws, y, t = cloning.grid_predictions(lstm, cfg, bias, x_max)
    err = (y - t).abs()  # [gx, gw]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.0))
    im = ax.imshow(err.T.numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=vmax,
                   extent=(xs[0].item(), xs[-1].item(), ws[0].item(), ws[-1].item()))
    ax.figure.colorbar(im, ax=ax, label="|output - target|")
    ax.set_xlabel("input x", fontsize=11)
    ax.set_ylabel("stored weight w", fontsize=11)
    ax.set_title(f"Error, b = {bias:g}: mean {err.mean():.3f}, max {err.max():.3f}", fontsize=11)
    return ax.figure


def plot_figure4(lstm, cfg, bias: float = 0.0, x_max: Optional[float] = None):
    """Both panels of Figure 4 side by side. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.8))
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
