"""What every chapter's figures share: a Markdown table, the explorer wiring of a figure to
ipywidgets, and mean ± std bands over seeds."""

from __future__ import annotations

from typing import Sequence

#: Width in inches of a figure that spans the page. The book's content column is about 675 px
#: at 1280 px and figures are drawn at 100 dpi, so a 7.5 in figure shows at 0.9 of its size
#: and matplotlib's 10 pt text at about 9 pt (issue 17's floor); wider figures shrink their text.
PAGE_WIDTH = 7.5
#: Width in inches that a figure shows at on the page (675 px of content column at 100 dpi):
#: a figure drawn wider is shrunk to it, and its text with it.
SHOWN_WIDTH = 6.75
#: The smallest text, in points as shown on the page, that a figure may have (issue 17).
MIN_TEXT_PT = 9.0
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


def named_datasets(rows: Sequence[dict]) -> list:
    """``rows`` with every ``"dataset"`` value written as the book names it
    (:data:`vsml_lite.data.DATASET_NAMES`: ``fashion_mnist`` -> Fashion-MNIST), for a table."""
    from ..data import DATASET_NAMES

    return [{k: DATASET_NAMES.get(v, v) if k == "dataset" else v for k, v in r.items()} for r in rows]


def legend_below(fig, handles=None, ncol: int = 3):
    """One legend for the whole figure, centred below its axes (after ``tight_layout``), so
    that no curve hides behind it and its entries keep matplotlib's 10 pt. ``handles``: the
    artists to list (default: those of the figure's first axes)."""
    if handles is None:
        handles = fig.axes[0].get_legend_handles_labels()[0]
    return fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol,
                      frameon=False)


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


def shown_text_sizes(fig) -> list:
    """Every visible, non-empty text of ``fig`` (titles, labels, tick labels, legends,
    annotations) with its size in points as the book shows it: the figure is saved with a tight
    bounding box (as Jupyter's inline backend does) and shrunk to ``SHOWN_WIDTH`` if wider.

    Returns:
        ``[(text, points)]``, smallest first.
    """
    renderer = fig.canvas.get_renderer()
    width = fig.get_tightbbox(renderer).width  # inches, what bbox_inches="tight" keeps
    scale = min(1.0, SHOWN_WIDTH / width)
    sizes = [(t.get_text(), t.get_fontsize() * scale) for t in _drawn_texts(fig, renderer)]
    return sorted(sizes, key=lambda pair: pair[1])


def _drawn_texts(artist, renderer):
    """The texts under ``artist`` that a draw puts on the canvas: visible, non-empty, inside the
    figure, and not part of an axis that ``axis("off")`` hides."""
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.spines import Spine
    from matplotlib.text import Text

    if not artist.get_visible():
        return
    if isinstance(artist, Text):
        box = artist.get_window_extent(renderer)
        if artist.get_text().strip() and box.width > 0 and artist.figure.bbox.overlaps(box):
            yield artist
        return
    children = artist.get_children()
    if isinstance(artist, Axes) and not artist.axison:
        children = [c for c in children if not isinstance(c, (Axis, Spine))]
    for child in children:
        yield from _drawn_texts(child, renderer)


def small_text(fig, floor: float = MIN_TEXT_PT) -> list:
    """The texts of ``fig`` smaller than ``floor`` points on the page (see
    :func:`shown_text_sizes`); empty when every text is legible."""
    return [(t, round(float(pt), 1)) for t, pt in shown_text_sizes(fig) if pt < floor - 1e-6]
