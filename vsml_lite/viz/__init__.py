"""Figures and ipywidgets explorers for the book's chapters.

matplotlib and ipywidgets are imported inside the functions, so ``import vsml_lite`` stays light.
Every explorer has a static twin (the ``plot_*`` function it calls), which the book shows
beside it for readers of the static HTML.

One module per chapter (:mod:`.equations`, :mod:`.fastweights` with :mod:`.diagrams`, :mod:`.forward`, :mod:`.backprop`,
:mod:`.metalearn`, :mod:`.improve`) and what they share (:mod:`.common`); everything is
importable from ``vsml_lite.viz`` directly.
"""

from .common import (
    LOSS_SMOOTHING,
    MIN_TEXT_PT,
    PAGE_WIDTH,
    band,
    figure_explorer,
    markdown_table,
    named_datasets,
    shown_text_sizes,
    small_text,
    smoothed,
)
from .equations import (
    CASE_COLORS,
    DIMMED_COLOR,
    plot_variable_counts,
    plot_w_tilde_cases,
    w_tilde_explorer,
)
from .diagrams import plot_figure1, plot_figure2, plot_figure3, plot_figure10
from .fastweights import (
    plot_learned_curves,
    plot_rule_surface,
    plot_weight_traces,
    plot_weights_in_states,
    rules_explorer,
)
from .forward import (
    FIGURE4_WEIGHTS,
    forward_clone_explorer,
    plot_figure4,
    plot_forward_clone_error,
    plot_forward_clone_lines,
    plot_loss_curve,
)
from .backprop import (
    CLONE_COLOR,
    SGD_COLOR,
    STAGE_COLORS,
    learning_curves_explorer,
    plot_cloning_curves,
    plot_fidelity_scatter,
    plot_hold_drift,
    plot_learning_curve_grid,
    plot_learning_curves,
    plot_update_response,
)
from .metalearn import (
    META_COLORS,
    inside_explorer,
    plot_figure6,
    plot_inside_snapshots,
    plot_inside_step,
    plot_lr_search,
    plot_meta_training,
    plot_templates,
)
from .improve import (
    IMPROVE_COLORS,
    figure9_explorer,
    plot_figure9,
    plot_search,
)
