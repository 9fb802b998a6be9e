"""Chapter 2: learning rules written out (Eqs. 9-11) and carried out by VS Meta RNNs (Eqs. 6, 12, 14)."""

import pytest
import torch

import vsml_lite as vl
from vsml_lite import fastweights as fw
from vsml_lite.fastweights.learned import (IMITATION_KINDS, compare_learners, effective_weights, imitate_rule,
                                           regression_episodes, run_learner, step_losses)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_neural_forward_and_named_rules_match_per_weight_loops():
    g = gen()
    A, B, eta = 3, 2, 0.1
    x, w = torch.randn(A, generator=g, dtype=torch.float64), torch.randn(A, B, generator=g, dtype=torch.float64)
    target = torch.randn(B, generator=g, dtype=torch.float64)
    y = fw.neural_forward(x, w, "tanh")
    for b in range(B):  # Eq. 9, one output at a time
        assert y[b].item() == pytest.approx(torch.tanh(sum(x[a] * w[a, b] for a in range(A))).item(), abs=1e-12)
    R = target - y
    per_weight = {  # Eq. 10 for one weight (x_a, x_b, w_ab, R_b)
        "hebb": lambda xa, xb, wab, Rb: eta * xa * xb,
        "oja": lambda xa, xb, wab, Rb: eta * xb * (xa - xb * wab),
        "delta": lambda xa, xb, wab, Rb: eta * xa * Rb,
        "decay": lambda xa, xb, wab, Rb: -eta * wab,
    }
    for rule, f in per_weight.items():
        dw = fw.rule_update(rule, x, y, w, R, eta)
        for a in range(A):
            for b in range(B):
                assert dw[a, b].item() == pytest.approx(f(x[a], y[b], w[a, b], R[b]).item(), abs=1e-12)


def test_delta_rule_is_sgd_on_squared_error():
    g = gen(1)
    x, w = torch.randn(4, generator=g), torch.randn(4, 2, generator=g, requires_grad=True)
    target = torch.randn(2, generator=g)
    y, w_next = fw.llr_step(x, w.detach(), target, "delta", eta=0.05)
    (0.5 * ((x @ w - target) ** 2).sum()).backward()
    torch.testing.assert_close(w_next, w.detach() - 0.05 * w.grad)


@pytest.mark.parametrize("rule", fw.RULES)
@pytest.mark.parametrize("sigma", ["identity", "tanh"])
def test_vs_meta_rnn_construction_equals_explicit_network(rule, sigma):
    """The hand-built V_M (Eq. 12) carries out each rule: same outputs and weights for 200 steps."""
    out = fw.equality_check(rule, 0.1, A=4, B=3, steps=200, generator=gen(2), sigma=sigma)
    assert out["weight_error"] <= 1e-10 * max(1.0, out["weight_scale"])
    assert out["output_error"] <= 1e-10 * max(1.0, out["weight_scale"])


def test_too_few_ticks_fail_and_are_refused():
    with pytest.raises(ValueError, match="needs at least 3 ticks"):
        fw.construct_rule("oja", 0.1, ticks=2)
    # Run with one tick too few, Oja's rule and Hebb's rule do not happen.
    oja = fw.equality_check("oja", 0.1, A=4, B=3, steps=50, generator=gen(3), ticks=2)
    hebb = fw.equality_check("hebb", 0.1, A=4, B=3, steps=50, generator=gen(3), ticks=1, sigma="tanh")
    assert oja["weight_error"] > 0.1 and hebb["weight_error"] > 0.1


def test_gated_tick_matches_a_loop_over_sub_rnns():
    g = gen(4)
    A, B, N, M = 3, 2, 5, 3
    layer = fw.VSLayer(N, kind="gated", gates=fw.LSTM_GATES, generator=g).double()
    s = torch.randn(A, B, N, generator=g, dtype=torch.float64)
    f, u = torch.randn(A, M, generator=g, dtype=torch.float64), torch.randn(B, M, generator=g, dtype=torch.float64)
    fast = layer.tick(s, f, u)
    for a in range(A):
        for b in range(B):
            pre = [layer.b_hat[k] + s[a, b] @ layer.W[k] + f[a] @ layer.C[k] + u[b] @ layer.U[k] for k in range(3)]
            ref = torch.sigmoid(pre[0]) * s[a, b] + torch.sigmoid(pre[1]) * torch.tanh(pre[2])  # Eq. 6
            torch.testing.assert_close(fast[a, b], ref)


def test_additive_tick_is_eq3_when_messages_are_the_interaction_sums():
    """With f_a = Σ_c s_ca and no backward term, Eq. 14's layer tick is Chapter 1's Eq. 3."""
    g = gen(5)
    A, N = 3, 4
    s = torch.randn(A, A, N, generator=g, dtype=torch.float64)
    W, C = (torch.randn(N, N, generator=g, dtype=torch.float64) for _ in range(2))
    b_hat = torch.randn(N, generator=g, dtype=torch.float64)
    f = s.sum(0)  # f_a = Σ_c s_{c a ·}
    out = fw.additive_tick(s, f, torch.zeros(A, N, dtype=torch.float64), W, C, torch.zeros(N, N, dtype=torch.float64), b_hat)
    torch.testing.assert_close(out, vl.vs_meta_rnn_step(s, W, C, b_hat))


def test_effective_weight_of_a_construction_is_its_weight_unit():
    layer = fw.construct_rule("delta", 0.1)
    s = torch.randn(2, 4, 3, 5, generator=gen(6), dtype=torch.float64)
    torch.testing.assert_close(effective_weights(layer, s), s[..., fw.WEIGHT_UNIT])


def test_additive_ticks_cannot_learn_a_product_rule():
    """A linear additive tick cannot compute x_a·x_b: after training its Hebb update is as far
    off as doing nothing, while the same training brings the gated tick close."""
    cfg = vl.get_config("smoke").fast_weights.__class__(imitation_iterations=150, imitation_batch=128)
    linear = imitate_rule("linear", "hebb", cfg, gen(7))
    gated = imitate_rule("gated", "hebb", cfg, gen(7))
    assert linear["update_error"] > 0.8
    assert gated["update_error"] < 0.5 * linear["update_error"]
    assert set(IMITATION_KINDS) == {"linear", "additive", "gated"}


def test_regression_task_and_learners():
    g = gen(8)
    xs, targets, W_star = regression_episodes(5, 7, 4, 2, g)
    assert xs.shape == (7, 5, 4) and targets.shape == (7, 5, 2)
    torch.testing.assert_close(targets[3, 1], xs[3, 1] @ W_star[1])
    # Zero weights predict 0: the first step's loss is the target's squared norm.
    predictions, _ = run_learner(0.1, xs, targets, ticks=2)
    torch.testing.assert_close(step_losses(predictions, targets)[0], (targets[0] ** 2).sum(-1).mean())


def test_compare_learners_meta_trains_and_reports_counts():
    cfg = vl.get_config("smoke").fast_weights.__class__(
        meta_batch=32, iterations=150, log_every=50, test_episodes=64, episode_length=15)
    out = compare_learners(cfg, seed=0, progress=False)
    names = [r["learner"] for r in out["rows"]]
    assert names[1:] == ["learned rule f_θ", "VS Meta RNN"] and names[0].startswith("delta rule")
    counts = {r["learner"]: (r["|V_M|"], r["|V_L|"]) for r in out["rows"]}
    N, M = cfg.vs_state, len(fw.FEEDBACK_SLOTS)
    assert counts["VS Meta RNN"] == (3 * (N * N + 2 * M * N + N) + N, cfg.inputs * cfg.outputs * N)
    assert counts["learned rule f_θ"] == (4 * cfg.rule_hidden + 2 * cfg.rule_hidden + 1, cfg.inputs * cfg.outputs)
    for name, history in out["histories"].items():
        assert history["loss"][-1] < history["loss"][0], name  # meta-training helps
    # Every learner improves within an episode.
    for name, curve in out["curves"].items():
        assert sum(curve[-3:]) < sum(curve[:3]), name


@pytest.mark.parametrize("bad, match", [
    (lambda: fw.rule_update("hebbian", *[torch.zeros(2)] * 2, torch.zeros(2, 2), torch.zeros(2), 0.1), "unknown learning rule"),
    (lambda: fw.construct_rule("nope", 0.1), "unknown learning rule"),
    (lambda: fw.VSLayer(5, gates=("sigmoid", "relu", "tanh")), "gates must name 3"),
    (lambda: fw.VSLayer(5, kind="lstm"), "kind must be"),
    (lambda: fw.neural_forward(torch.zeros(3), torch.zeros(4, 2)), "do not fit"),
    (lambda: fw.run_llr(torch.zeros(3, 2), torch.zeros(4, 1), torch.zeros(2, 1), "delta", 0.1), "must match"),
    (lambda: vl.get_config("cpu").override({"fast_weights.vs_gates": "relu,tanh,tanh"}), "not allowed"),
])
def test_bad_input_is_named(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()


def test_diagrams_draw_the_connectivity_of_eq4():
    """Figure 10(b) draws one arrow per non-zero block of W̃ (Eq. 4), A = B = 2: A³ + A² - A."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    from vsml_lite.viz.diagrams import block_cases

    A = 2
    assert int((block_cases(A) != vl.CASE_ZERO).sum()) == A ** 3 + A ** 2 - A
    fig = vl.viz.plot_figure10(N=4)
    unrolled = fig.axes[1]
    assert sum(isinstance(p, FancyArrowPatch) for p in unrolled.patches) == A ** 3 + A ** 2 - A
    for make in (vl.viz.plot_figure1, vl.viz.plot_figure2, vl.viz.plot_figure3):
        plt.close(make())
    plt.close(fig)
    plt.close(vl.viz.plot_weights_in_states("oja", 3, 2, steps=5, step=2))
