"""Every figure the chapters draw has text of at least ``vl.viz.MIN_TEXT_PT`` points as the
book shows it (issue 17). Each figure is drawn the way its chapter draws it, from the shipped
artifacts where the chapter loads one, so a figure that shrinks its text (too wide, a small
legend) fails here rather than on the page."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vsml_lite as vl  # noqa: E402
from vsml_lite import backprop as bp  # noqa: E402
from vsml_lite import cloning, improve  # noqa: E402
from vsml_lite import metalearn as ml  # noqa: E402


def _record(kind: str):
    """The artifact the chapter of ``kind`` shows."""
    return vl.load_artifact(vl.shipped_path(kind))


def _chapter1():
    yield "1.1 W̃ cases", vl.viz.plot_w_tilde_cases(3, 2)
    yield "1.2 variable counts", vl.viz.plot_variable_counts([1, 2, 4, 8, 16], N=8)


def _chapter2():
    for make in (vl.viz.plot_figure1, vl.viz.plot_figure2, vl.viz.plot_figure3,
                 vl.viz.plot_figure10):
        yield make.__name__, make()
    yield "2.3 weights in states", vl.viz.plot_weights_in_states("oja", 4, 3, steps=30, step=30)
    curves = {"delta rule": [1.0, 0.5, 0.2], "learned f_θ": [1.0, 0.4, 0.3]}
    fig, axes = plt.subplots(1, 2, figsize=(vl.viz.PAGE_WIDTH, 3.6))
    vl.viz.plot_learned_curves(curves, ax=axes[0])
    vl.viz.plot_weight_traces({"delta rule": [0.0, 0.3, 0.5]}, 0.6, ax=axes[1])
    fig.tight_layout()
    yield "2.5 learned curves", fig
    yield "2.7 rule surface", vl.viz.plot_rule_surface(vl.fastweights.LearnedRule(hidden=8), 0.1)


def _chapter3():
    record = _record(cloning.KIND)
    curves = record.meta["curves"]
    yield "3.1 loss curve", vl.viz.plot_loss_curve(curves["steps"], curves["loss"], title="cloning")
    cfg = vl.Config.from_dict(record.meta["config"])
    yield "3.2 Figure 4", vl.viz.plot_figure4(cloning.load_forward_clone(record), cfg)


def _chapter4():
    record = _record(bp.KIND)
    cfg, clones = bp.load_backprop_clone(record)
    yield "4.1 cloning curves", vl.viz.plot_cloning_curves(record.meta["curves"])
    pairs = {name: (torch.randn(40), torch.randn(40)) for name in
             ("forward outputs", "backward errors", "weight updates", "bias updates")}
    yield "4.2 fidelity scatter", vl.viz.plot_fidelity_scatter(pairs)
    xs = torch.linspace(-1.5, 1.5, 7).tolist()
    responses = {name: bp.update_response(clones[name].cpu(), cfg, xs) for name in bp.CLONES}
    yield "4.3 update response", vl.viz.plot_update_response(responses)
    curves = record.tensors["learning_curves"]
    runs = [k for k in curves if k.startswith("curriculum/")][:2]
    yield "4.4 learning curves", vl.viz.plot_learning_curve_grid(curves, runs, paper=bp.PAPER_ACCURACY)
    drifts = {name: bp.hold_drift(clones[name].cpu(), cfg, steps=20, copies=2) for name in bp.CLONES}
    yield "4.6 hold drift", vl.viz.plot_hold_drift(drifts)


def _chapter5():
    record = _record(ml.KIND)
    cfg, learners = ml.load_learners(record)
    evaluation = ml.evaluation_from_record(record)
    yield "5.1 meta-training", vl.viz.plot_meta_training(record.meta["curves"])
    yield "5.2 lr search", vl.viz.plot_lr_search(evaluation["lr_search"])
    order = (*learners, *ml.BASELINES)  # the models the record has, as the chapter draws them
    yield "5.3 Figure 6", vl.viz.plot_figure6(evaluation["curves"], order, mark=cfg.meta_learning.episode_length)
    side = cfg.meta_learning.input_side
    images = torch.rand(6, side * side)
    labels = torch.arange(6) % 10
    trace = ml.trace_episode(learners["vsml"], images, labels, seed=0, state_clip=cfg.meta_learning.state_clip)
    yield "5.4 templates", vl.viz.plot_templates(trace, 0, side)
    yield "5.5 snapshots", vl.viz.plot_inside_snapshots(trace, [0, 1, 3, 6], 0, side)


def _chapter6():
    record = _record(improve.KIND)
    yield "6.1 search", vl.viz.plot_search(record.meta["curves"]["search"])
    yield "6.2 Figure 9", vl.viz.plot_figure9(record.tensors["curves"], record.tensors["steps"])


@pytest.mark.parametrize("chapter", [_chapter1, _chapter2, _chapter3, _chapter4, _chapter5, _chapter6],
                         ids=lambda f: f.__name__.strip("_"))
def test_every_figure_text_is_legible_on_the_page(chapter):
    small = {}
    for name, fig in chapter():
        if found := vl.viz.small_text(fig):
            small[name] = found[:4]
        plt.close(fig)
    assert not small, f"text under {vl.viz.MIN_TEXT_PT} pt on the page: {small}"


def test_shown_text_sizes_shrink_wide_figures():
    narrow, ax = plt.subplots(figsize=(4, 3))
    ax.set_title("t", fontsize=10)
    assert dict(vl.viz.shown_text_sizes(narrow))["t"] == pytest.approx(10)
    wide, ax = plt.subplots(figsize=(13.5, 3))
    ax.set_title("t", fontsize=10)
    # the tight box drops some of the 13.5 in of margin: shrunk to between 1/2 and 2/3
    assert 5 < dict(vl.viz.shown_text_sizes(wide))["t"] < 6.75
    assert "t" in dict(vl.viz.small_text(wide))
    plt.close("all")
