"""What every chapter's figures share: a Markdown table, the explorer wiring of a figure to
ipywidgets, and mean ± std bands over seeds."""

from __future__ import annotations

from typing import Sequence

#: Width in inches of a figure that spans the page. The book's content column is about 675 px
#: at 1280 px and figures are drawn at 100 dpi, so a 7.5 in figure shows at 0.9 of its size
#: and matplotlib's 10 pt text at about 9 pt (issue 17's floor); wider figures shrink their text.
PAGE_WIDTH = 7.5
#: Steps averaged into one point of a plotted training-loss curve.
LOSS_SMOOTHING = 10


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


def band(ax, x, values, color, label):
    """Mean ± std over the first axis of ``values [S, T]``."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    m, s = v.mean(0), v.std(0)
    ax.plot(x, m, color=color, label=label)
    ax.fill_between(x, m - s, m + s, color=color, alpha=0.25, lw=0)


def smoothed(steps, loss, k: int = LOSS_SMOOTHING):
    """Average ``loss [S, T]`` over windows of ``k`` steps; returns ``(x, [S, T // k])``."""
    import numpy as np

    loss = np.asarray(loss, dtype=float)
    T = loss.shape[1] // k * k
    if T == 0:
        return np.asarray(steps), loss
    return np.asarray(steps[:T]).reshape(-1, k).mean(1), loss[:, :T].reshape(loss.shape[0], -1, k).mean(2)
