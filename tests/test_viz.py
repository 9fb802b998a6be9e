"""Figures and tables used by the chapters (headless matplotlib)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import vsml_lite as vl  # noqa: E402


def test_markdown_table_formats_and_escapes_pipes():
    table = vl.viz.markdown_table([{"|V_M|": 1234, "err": 1.5e-13, "name": "a|b"}], ".1e")
    header, rule, row = table.splitlines()
    assert header == r"| \|V_M\| | err | name |"
    assert rule == "| --- | --- | --- |"
    assert row == r"| 1,234 | 1.5e-13 | a\|b |"
    with pytest.raises(ValueError, match="at least one row"):
        vl.viz.markdown_table([])


def test_w_tilde_heat_map_counts_cases_in_legend():
    fig = vl.viz.plot_w_tilde_cases(3, 2, highlight="W")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    # A = 3, N = 2: 27 C-blocks (3 of them C+W), 9 W-blocks (3 of them C+W), 4 entries a block
    assert labels == ["0 (192)", "C (96)", "W (24)", "C+W (12)"]
    with pytest.raises(ValueError, match="highlight must be"):
        vl.viz.plot_w_tilde_cases(2, 2, highlight="X")


def test_variable_count_plot_and_explorer_build():
    fig = vl.viz.plot_variable_counts([1, 2, 4], N=3)
    assert len(fig.axes[0].get_lines()) == 3
    explorer = vl.viz.w_tilde_explorer(A=2, N=2)
    sliders = explorer.children[0].children
    assert [w.value for w in sliders] == [2, 2, "all"]
    sliders[0].value = 3  # redraws without error


def test_chapter3_figures_draw_from_recorded_curves():
    import matplotlib.pyplot as plt

    cloning_curves = {"iteration": [10, 20, 30, 40], "stage": ["local", "local", "shallow", "deep_own"],
                      "forward": [3.0, 2.0, 1.5, 1.0], "backward": [2.0, 1.0, 0.8, 0.5], "update": [1.0, 0.5, 0.4, 0.3]}
    fig = vl.viz.plot_cloning_curves(cloning_curves)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "stage shallow" in labels and "weight updates" in labels
    plt.close(fig)
    S, T = 3, 20
    run = {"steps": torch.arange(1, T + 1), "eval_steps": torch.tensor([0, 10, 20]),
           "clone_train_loss": torch.rand(S, T), "sgd_train_loss": torch.rand(S, T),
           "clone_test_accuracy": torch.rand(S, 3), "sgd_test_accuracy": torch.rand(S, 3)}
    fig = vl.viz.plot_learning_curve_grid({"curriculum/mnist/shallow": run}, ["curriculum/mnist/shallow"],
                                          paper={("mnist", "shallow"): 0.9})
    assert len(fig.axes) == 2
    plt.close(fig)
    pairs = {"forward outputs": (torch.randn(50), torch.randn(50))}
    plt.close(vl.viz.plot_fidelity_scatter(pairs))
    vl.viz.learning_curves_explorer({"curriculum/mnist/shallow": run})


def test_chapter2_figures_and_explorer_draw():
    """Figure 4 (lines and error heat-map), the loss curve and the explorer, from a fresh clone."""
    cfg = vl.get_config("smoke").override({"forward_cloning.grid_x": 11, "forward_cloning.grid_w": 5})
    lstm = vl.cloning.new_sub_lstm(cfg)
    fig = vl.viz.plot_figure4(lstm, cfg, bias=0.5)
    assert len(fig.axes) >= 2
    assert vl.viz.plot_loss_curve([1, 2, 3], [1.0, 0.5, 0.25], title="t") is not None
    assert vl.viz.forward_clone_explorer(lstm, vl.cloning.new_sub_lstm(cfg, seed=1), cfg) is not None
    plt.close("all")


def test_tables_name_datasets_as_the_book_does():
    rows = [{"dataset": "fashion_mnist", "n": 1}, {"dataset": "mnist", "n": 2}]
    assert vl.viz.named_datasets(rows) == [{"dataset": "Fashion-MNIST", "n": 1}, {"dataset": "MNIST", "n": 2}]
    assert rows[0]["dataset"] == "fashion_mnist"  # the rows themselves are left alone
