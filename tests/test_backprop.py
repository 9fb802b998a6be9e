"""Chapter 4: cloning backpropagation (Section 3.2, Eq. 14, Appendix B) and the cloned learner."""

import json

import pytest
import torch

import vsml_lite as vl
from vsml_lite import backprop as bp


def _cfg(**kw):
    changes = {"device": "cpu", "backprop_cloning.local_batch": 64, "backprop_cloning.local_iterations": 12,
               "backprop_cloning.shallow_iterations": 4, "backprop_cloning.deep_gt_iterations": 2,
               "backprop_cloning.deep_own_iterations": 2, "backprop_cloning.input_side": 4,
               "backprop_cloning.deep_hidden": 4, "backprop_cloning.warmup_max": 3,
               "backprop_cloning.checkpoint_every": 4, "backprop_cloning.log_every": 2}
    changes.update(kw)
    return vl.get_config("smoke").override(changes)


def _random_weights(sizes, groups, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(groups, A, B, generator=gen, dtype=dtype),
             0.1 * torch.randn(groups, A, B, generator=gen, dtype=dtype)) for A, B in zip(sizes[:-1], sizes[1:])]


def test_sgd_step_by_formulas_equals_autograd():
    sizes, G, n = [5, 4, 3], 2, 6
    weights = _random_weights(sizes, G)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(G, n, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(3, (G, n), generator=gen)
    by_autograd, _ = bp.mlp_sgd_step(weights, x, labels, 0.3)
    for (w, b), (w2, b2) in zip(by_autograd, bp.formula_sgd_step(weights, x, labels, 0.3)):
        torch.testing.assert_close(w, w2)
        torch.testing.assert_close(b, b2)


@pytest.mark.parametrize("horizon, fresh_draws", [(1, 5), (10 ** 9, 1)])
def test_a_network_stage_draws_fresh_learners_only_when_one_is_replaced(monkeypatch, horizon, fresh_draws):
    """The warm-up of fresh learners (up to ``warmup_max`` SGD steps) runs only in iterations
    where the pool replaces a learner: every iteration at horizon 1, only the stage's first
    when no learner is ever replaced."""
    cfg = _cfg(**{"backprop_cloning.local_iterations": 0, "backprop_cloning.shallow_iterations": 5,
                  "backprop_cloning.deep_gt_iterations": 0, "backprop_cloning.deep_own_iterations": 0,
                  "backprop_cloning.horizon": horizon})
    gen = torch.Generator().manual_seed(0)
    data = vl.TensorData(torch.randn(50, 16, generator=gen), torch.randint(10, (50,), generator=gen), "mnist", True)
    task = bp.BackpropCloningTask(cfg, data)
    drawn = []
    fresh_weights = bp.curriculum.init_weights
    monkeypatch.setattr(bp.curriculum, "init_weights", lambda *a, **k: drawn.append(1) or fresh_weights(*a, **k))
    for i in range(5):
        task.step(i)
    assert len(drawn) == fresh_draws


def test_formulas_the_clone_learns_equal_autograd():
    """The targets of Eq. 14's cloning (e' = Σ_b e w (1 - tanh²x), dw = e tanh x, db = e) are
    exactly what autograd computes for the mean cross-entropy."""
    sizes, G, n = [5, 4, 3], 2, 6
    weights = _random_weights(sizes, G)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(G, n, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(3, (G, n), generator=gen)
    inputs, logits, errors, grads = bp.mlp_backprop(weights, x, labels)
    out_err = torch.softmax(logits, -1) - torch.nn.functional.one_hot(labels, 3)
    errors2, grads2 = bp.errors_and_grads(weights, inputs, out_err)
    for a, b in zip(errors, errors2):
        torch.testing.assert_close(a, b)
    for (gw, gb), (gw2, gb2) in zip(grads, grads2):
        torch.testing.assert_close(gw, gw2)
        torch.testing.assert_close(gb, gb2)
    _, logits2 = bp.mlp_forward(weights, x)
    torch.testing.assert_close(logits, logits2)


def test_state_holds_the_weights_and_averaging_is_per_learner():
    cfg = _cfg()
    learner = vl.VSMLNetwork([3, 2], micro_ticks=1, reduce="sum", output_bound=None, lstm=bp.new_clone_lstm(cfg))
    weights = _random_weights([3, 2], groups=2, dtype=torch.float32)
    state = bp.state_from_weights(learner, weights, copies=4, state_scale=2.0)
    assert state[0].c.shape == (8, 3, 2, cfg.backprop_cloning.hidden_size)
    for (w, b), (rw, rb) in zip(weights, bp.read_weights(state, 2, 2.0)):
        torch.testing.assert_close(rw, w)
        torch.testing.assert_close(rb, b)
    x = torch.randn(8, 3)
    state, inputs, y = learner.forward_phase(state, x)
    assert y.shape == (8, 2) and inputs[0] is x
    avg = vl.average_learner_batch(state, groups=2)
    h = avg[0].h.reshape(2, 4, 3, 2, -1)
    torch.testing.assert_close(h[:, 0], h[:, 3])
    torch.testing.assert_close(h[0, 0], state[0].h[:4].mean(0))
    assert not torch.allclose(h[0, 0], h[1, 0])
    with pytest.raises(ValueError, match=r"x must have shape \[n, 3\]"):
        learner.forward_phase(state, torch.randn(8, 4))
    with pytest.raises(ValueError, match=r"must be \[G, 3, 2\]"):
        bp.state_from_weights(learner, [(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2))], 1, 2.0)
    with pytest.raises(ValueError, match="does not split into 3 learners"):
        vl.average_learner_batch(state, groups=3)


def _layout1_step(lstm, state, x, labels, groups, micro_ticks, clip):
    """A learner step as clones of message layout 1 were run (the learner before it became the
    network in two phases): one value slot, 0, for a layer's input and its output alike."""
    def phase(s, x, e):
        M = lstm.msg_size
        fwd = torch.nn.functional.pad(x[..., None], (0, M - 1))
        bwd = torch.nn.functional.pad(e[..., None], (0, M - 1))
        h, c, f, g = vl.dense_ticks(lstm, vl.LayerState(s.h, s.c, fwd, bwd), micro_ticks, "sum", clip)
        return vl.LayerState(h, c, fwd, bwd), f[..., 0], g[..., 0]

    new, inputs = [], []
    for s in state:
        inputs.append(x)
        s, x, _ = phase(s, x, x.new_zeros(x.shape[0], s.h.shape[2]))
        new.append(s)
    e = vl.cross_entropy_error(x, labels)
    for l in reversed(range(len(new))):
        new[l], _, e = phase(new[l], inputs[l], e)
    return vl.average_learner_batch(new, groups), x


def test_a_layout_1_clone_upgraded_learns_exactly_as_before():
    """Clones made before the learner became the network in two phases read each layer's
    output from slot 0; :func:`upgrade_clone_state` moves it to OUTPUT_SLOT, and the network
    in two phases then computes what the old learner did with the old V_M."""
    cfg = _cfg()
    old = bp.new_clone_lstm(cfg, seed=3)
    with torch.no_grad():
        old.fwd_bias.normal_(generator=torch.Generator().manual_seed(4))  # slot-dependent biases too
    new = bp.new_clone_lstm(cfg)
    new.load_state_dict(bp.upgrade_clone_state(old.state_dict(), 1))
    assert not torch.equal(new.fwd_proj, old.fwd_proj)
    sizes, G, n = [6, 5, 3], 2, 3
    weights = _random_weights(sizes, G, dtype=torch.float32)
    gen = torch.Generator().manual_seed(5)
    learner = bp.make_learner(new, cfg, sizes)
    s_new = bp.state_from_weights(learner, weights, n, 2.0)
    s_old = bp.state_from_weights(learner, weights, n, 2.0)
    with torch.no_grad():
        for _ in range(3):
            x, labels = torch.randn(G * n, 6, generator=gen), torch.randint(3, (G * n,), generator=gen)
            s_new, y_new = learner.learn_step(s_new, x, labels, G)
            s_old, y_old = _layout1_step(old, s_old, x, labels, G, learner.micro_ticks, learner.state_clip)
            torch.testing.assert_close(y_new, y_old)
    for a, b in zip(s_new, s_old):
        torch.testing.assert_close(a.c, b.c)
    same = bp.upgrade_clone_state(new.state_dict(), bp.CLONE_LAYOUT)
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in same.items())
    with pytest.raises(ValueError, match="unknown clone layout 7"):
        bp.upgrade_clone_state(new.state_dict(), 7)


def test_artifacts_record_their_layout_and_old_ones_load_upgraded():
    class Record:
        def __init__(self, meta):
            self.meta = meta

    assert bp.clone_layout(Record({})) == 1
    assert bp.clone_layout(Record({"clone_layout": bp.CLONE_LAYOUT})) == bp.CLONE_LAYOUT


@pytest.mark.parametrize("stage", bp.STAGES)
def test_every_curriculum_stage_gives_a_loss_with_gradients(stage):
    cfg = _cfg()
    lstm = bp.new_clone_lstm(cfg)
    gen = torch.Generator().manual_seed(0)
    data = vl.TensorData(torch.randn(50, 16, generator=gen), torch.randint(10, (50,), generator=gen), "mnist", True)
    weights, batches, errors_from, given = bp.sample_stage(cfg, stage, data, gen, "cpu")
    learner = bp.make_learner(lstm, cfg, bp.stage_sizes(cfg, stage))
    # Units far above the untrained clone's errors keep Smooth L1 quadratic: in its linear part
    # every element's gradient is ±1/N, and a bias gradient (a sum of them) can cancel to
    # exactly 0 (it did for fwd_bias on 4 of 60 random data draws).
    losses, state = bp.rollout_losses(learner, weights, batches, bp.learning_rate(cfg), 1e3,
                                      cfg.backprop_cloning.state_scale, 1e3, errors_from, given)
    assert set(losses) == {"forward", "backward", "update"}
    assert len(state) == len(bp.stage_sizes(cfg, stage)) - 1 and isinstance(state[0], vl.LayerState)
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in lstm.parameters()
               if p is not lstm.bwd_proj or stage != "local")


def test_cloning_reduces_the_losses():
    cfg = _cfg(**{"backprop_cloning.local_iterations": 600, "backprop_cloning.shallow_iterations": 0,
                  "backprop_cloning.deep_gt_iterations": 0, "backprop_cloning.deep_own_iterations": 0,
                  "backprop_cloning.log_every": 50, "backprop_cloning.local_batch": 256,
                  "backprop_cloning.horizon": 1, "backprop_cloning.local_copies": 4})  # fresh learners: a stationary loss
    curves = bp.train_backprop_cloning(cfg, progress=False).curves
    for key in ("forward", "update"):
        assert curves[key][-1] < 0.8 * curves[key][0], key


def test_interrupted_cloning_resumes_to_the_same_result(tmp_path, interrupt_on_call):
    cfg = _cfg()
    data = vl.TensorData(torch.randn(50, 16), torch.randint(10, (50,)), "mnist", True)
    straight = bp.train_backprop_cloning(cfg, progress=False, data=data)
    ckpt = tmp_path / "run.ckpt"
    restore = interrupt_on_call(bp.curriculum, "sample_stage", 15)  # Ctrl-C during iteration 15, in stage "shallow"
    with pytest.raises(KeyboardInterrupt, match="stopped at iteration 15"):
        bp.train_backprop_cloning(cfg, checkpoint=ckpt, progress=False, data=data)
    restore()
    resumed = bp.train_backprop_cloning(cfg, checkpoint=ckpt, progress=False, data=data)
    assert resumed.resumed_from == 15
    for (k, a), (_, b) in zip(straight.lstm.state_dict().items(), resumed.lstm.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert resumed.curves == straight.curves
    for k, v in straight.snapshots["local"].items():
        torch.testing.assert_close(resumed.snapshots["local"][k], v, rtol=0, atol=0)


def test_the_learner_loop_refuses_autograd():
    with pytest.raises(AssertionError, match="autograd is enabled"):
        bp.assert_no_autograd(torch.zeros(1))
    with torch.no_grad():
        bp.assert_no_autograd(torch.zeros(1))
        with pytest.raises(AssertionError, match="carries an autograd graph"):
            bp.assert_no_autograd(torch.zeros(1, requires_grad=True))


def test_learning_curves_share_data_and_initial_weights():
    cfg = _cfg(**{"backprop_cloning.test_steps": 6, "backprop_cloning.eval_every": 3,
                  "backprop_cloning.eval_examples": 20, "backprop_cloning.test_learner_batch": 4})
    data = vl.TensorData(torch.randn(40, 16), torch.randint(10, (40,)), "mnist", True)
    out = bp.learning_curves(bp.new_clone_lstm(cfg), cfg, data, data, [16, 10], seeds=[0, 1], progress=False)
    assert out["eval_steps"] == [0, 3, 6]
    for who in ("clone", "sgd"):
        assert out[who]["train_loss"].shape == (2, 6)
        assert out[who]["test_accuracy"].shape == (2, 3)
    # The clone starts from the SGD network's weights: before learning, both see the same
    # first batch; the untrained sub-LSTM does not compute tanh(x) w + b, so losses differ,
    # but SGD's first loss must equal the ground-truth network's on that batch.
    order = torch.randperm(40, generator=vl.make_generator(0))[:4]
    weights = bp.init_weights([16, 10], 1, vl.make_generator(10_000))
    _, logits = bp.mlp_forward(weights, data.images[order][None])
    first = torch.nn.functional.cross_entropy(logits[0], data.labels[order])
    assert out["sgd"]["train_loss"][0, 0].item() == pytest.approx(first.item(), rel=1e-5)


def _shipped():
    record = vl.load_artifact(vl.shipped_path(bp.KIND))
    return record, *bp.load_backprop_clone(record)


def test_shipped_clone_matches_autograd_on_held_out_data(data_root):
    """Forward outputs, backward errors and weight updates of the shipped clone against
    autograd's on MNIST test images (never used for cloning) and Fashion-MNIST (never seen),
    shallow arrangement. The bounds sit below what the clone measures (printed with -s) and far
    above an untrained sub-LSTM's. On Fashion-MNIST the shipped clone (eta = 0.06) computes the
    updates as closely as on MNIST but its logits and the errors it sends to the inputs less so
    (forward cosine 0.87, mostly a shift common to all ten logits, which softmax ignores;
    backward 0.75; the eta = 0.08 clone it replaced measured above 0.98 and 0.95 there):
    Chapter 4.5 reports it, and these looser bounds hold it to what it measures."""
    record, cfg, clones = _shipped()
    cfg = cfg.override({"device": "cpu"})
    for dataset in ("mnist", "fashion_mnist"):
        test = bp.load_split(cfg, dataset, train=False)
        for name, lstm in (("clone", clones["curriculum"]), ("untrained", bp.new_clone_lstm(cfg))):
            sim = bp.fidelity(lstm, cfg, test, bp.arrangement(cfg, "shallow"), seed=1)
            print(dataset, name, {k: round(v, 3) for k, v in sim.items()})
            if name == "untrained":
                assert sim["update_cosine"] < 0.5, sim
                continue
            if dataset == "mnist":
                assert sim["forward_cosine"] > 0.98 and sim["forward_rel_error"] < 0.3, sim
                assert sim["backward_cosine"] > 0.95, sim
            else:  # measured: 0.870, 0.511 and 0.750
                assert sim["forward_cosine"] > 0.8 and sim["forward_rel_error"] < 0.7, sim
                assert sim["backward_cosine"] > 0.6, sim
            assert sim["update_cosine"] > 0.95, sim
            # The weights alone: issue 13's bar of 0.9 (this clone measures 0.993 and 0.989).
            assert sim["bias_cosine"] > 0.95 and sim["weight_cosine"] > 0.9, sim


def test_cosine_reads_tensors_flat_and_centred_ignores_a_per_row_shift():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]])
    assert bp.cosine(a, 2 * a) == pytest.approx(1.0)
    assert bp.cosine(a, -a) == pytest.approx(-1.0)
    assert bp.cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == pytest.approx(0.0)
    shifted = a + torch.tensor([[5.0], [-7.0]])  # each row moved by its own constant: softmax ignores it
    assert bp.cosine(a, shifted) < 0.9
    assert bp.cosine(a, shifted, centred=True) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        bp.cosine(a, a.reshape(-1))


def test_fidelity_reports_weights_and_biases_apart_and_over_many_steps(data_root):
    """The combined update is the weights' and the biases' changes together; the accumulated
    comparison's SGD side is plain SGD from the same weights on the same batches."""
    _, cfg, clones = _shipped()
    cfg = cfg.override({"device": "cpu", "backprop_cloning.input_side": 7})
    test = bp.load_split(cfg, "mnist", train=False)
    sizes = bp.arrangement(cfg, "shallow")
    pairs = bp.one_step_comparison(clones["curriculum"], cfg, test, sizes, learners=2, copies=4, warmup=3, seed=2)
    assert set(pairs) == set(bp.PARTS)
    sim = bp.fidelity(clones["curriculum"], cfg, test, sizes, learners=2, copies=4, warmup=3, seed=2)
    both = [torch.cat([pairs["weight updates"][i], pairs["bias updates"][i]]) for i in (0, 1)]
    assert sim["update_cosine"] == pytest.approx(
        torch.nn.functional.cosine_similarity(both[0], both[1], dim=0).item(), abs=1e-6)
    changes = bp.accumulated_comparison(clones["curriculum"], cfg, test, sizes, steps=5, learners=2, copies=4, seed=3)
    gen = vl.make_generator(3)
    start = bp.init_weights(sizes, 2, gen)
    weights = start
    for _ in range(5):
        idx = torch.randint(len(test), (2, 4), generator=gen)
        weights, _ = bp.mlp_sgd_step(weights, test.images[idx], test.labels[idx], bp.learning_rate(cfg))
    torch.testing.assert_close(changes["weight change"][1], (weights[0][0] - start[0][0]).reshape(-1))
    torch.testing.assert_close(changes["bias change"][1], (weights[0][1] - start[0][1]).reshape(-1))
    totals = bp.accumulated_fidelity(clones["curriculum"], cfg, test, sizes, steps=5, learners=2, copies=4, seed=3)
    assert set(totals) == {f"{part}_total_{m}" for part in ("weight", "bias", "seen_bias") for m in ("cosine", "ratio")}
    assert all(v == v for v in totals.values())  # no NaN
    torch.testing.assert_close(changes["seen bias change"][1], bp.seen_biases([weights[0][1] - start[0][1]]))


def test_seen_biases_keep_what_the_output_depends_on():
    """Only each neuron's sum over its connections reaches the output (Eq. 13), and the softmax
    ignores a shift common to all classes: changes the network cannot see vanish, and SGD's
    change, equal on every connection of a neuron, is all seen."""
    gen = vl.make_generator(0)
    hidden, logits = torch.randn(2, 5, 3, generator=gen), torch.randn(2, 3, 4, generator=gen)
    seen = bp.seen_biases([hidden, logits])
    assert seen.shape == (2 * 3 + 2 * 4,)
    torch.testing.assert_close(seen[:6], hidden.sum(1).reshape(-1))
    centred = logits.sum(1) - logits.sum(1).mean(-1, keepdim=True)
    torch.testing.assert_close(seen[6:], centred.reshape(-1))
    # spread over one neuron's connections, summing to zero, or common to all classes: unseen
    spread = torch.randn(2, 5, 3, generator=gen)
    spread = spread - spread.mean(1, keepdim=True)
    shift = torch.randn(2, 3, 1, generator=gen).expand(2, 3, 4)
    torch.testing.assert_close(bp.seen_biases([spread, shift]), torch.zeros(14))
    # a change that is the same on every connection of a hidden neuron is seen whole
    same = torch.randn(2, 1, 3, generator=gen).expand(2, 5, 3)
    torch.testing.assert_close(bp.seen_biases([same, torch.zeros(2, 3, 4)])[:6], 5 * same[:, 0].reshape(-1))


def test_shipped_clone_learns_mnist_without_autograd(data_root):
    """A short fresh run of the shipped clone: it learns (well above chance)."""
    record, cfg, clones = _shipped()
    cfg = cfg.override({"backprop_cloning.test_steps": 150, "backprop_cloning.eval_every": 150,
                        "backprop_cloning.eval_examples": 500, "device": "cpu"})
    train, test = bp.load_split(cfg, "mnist", True), bp.load_split(cfg, "mnist", False)
    out = bp.learning_curves(clones["curriculum"], cfg, train, test, bp.arrangement(cfg, "shallow"),
                             seeds=[7], progress=False)
    clone, sgd = out["clone"]["test_accuracy"][0, -1].item(), out["sgd"]["test_accuracy"][0, -1].item()
    print(f"after 150 steps: clone {clone:.3f}, SGD {sgd:.3f}")
    assert clone > 0.45 and clone > sgd - 0.25


def test_shipped_artifact_records_what_made_it():
    record, cfg, _ = _shipped()
    meta = record.meta
    for key in ("kind", "preset", "seed", "config", "code_version", "metrics", "curves"):
        assert key in meta
    # The code can rebuild the config: every recorded setting round-trips, and settings added
    # since (which must default to the behaviour the artifact was made with) sit at defaults.
    rebuilt = vl.Config.from_dict(meta["config"]).to_dict()
    defaults = vl.Config().to_dict()
    for section, values in rebuilt.items():
        recorded = meta["config"].get(section, defaults[section])  # a section added since: defaults
        if not isinstance(values, dict):
            assert recorded == values, section
            continue
        for name, value in values.items():
            want = recorded[name] if name in recorded else defaults[section][name]
            assert json.loads(json.dumps(value)) == json.loads(json.dumps(want)), f"{section}.{name}"  # tuples are JSON lists
    final = meta["metrics"]["final"]
    assert set(final) == {bp.run_key(*e) for e in bp.EVALUATIONS}
    for dataset in ("mnist", "fashion_mnist"):  # what the chapter states about the shallow clone
        assert final[f"curriculum/{dataset}/shallow"]["clone_mean"] > 0.5
    # The headline numbers are the runs' own: the accuracy after the last step on
    # final_test_images (all 10,000 in the shipped record), and the curves' last point on the
    # first eval_examples, each the mean of what the record's tensors hold.
    curves = record.tensors["learning_curves"]["curriculum/mnist/shallow"]
    row = final["curriculum/mnist/shallow"]
    assert row["test_images"] == bp.final_test_images(cfg)
    assert curves["clone_final_accuracy"].mean().item() == pytest.approx(row["clone_mean"])
    assert curves["sgd_final_accuracy"].mean().item() == pytest.approx(row["sgd_mean"])
    assert curves["clone_test_accuracy"][:, -1].mean().item() == pytest.approx(row["curve_clone_mean"])
    assert curves["clone_test_accuracy"].shape[0] == cfg.backprop_cloning.test_seeds


def test_train_and_save_smoke_end_to_end(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv(vl.artifacts.LIVE_ENV_VAR, str(tmp_path))
    cfg = _cfg(**{"backprop_cloning.test_steps": 3, "backprop_cloning.eval_every": 3,
                  "backprop_cloning.eval_examples": 16, "backprop_cloning.test_learner_batch": 2,
                  "backprop_cloning.test_seeds": 2})
    path = bp.train_and_save(cfg, progress=False)
    assert path == tmp_path / "backprop_cloning_smoke"
    assert not path.with_suffix(".ckpt").exists() and not path.with_suffix(".eval.ckpt").exists()
    record = vl.load_artifact(path)
    assert {r["clone"] for r in record.meta["metrics"]["accuracy"]} == set(bp.CLONES)
    assert len(record.tensors["learning_curves"]) == len(bp.EVALUATIONS)
    # The meta-test's time is the sum of its runs' own, each kept with the code that ran it.
    m = record.meta["metrics"]
    assert set(m["eval_runs"]) == set(record.tensors["learning_curves"]) and m["eval_untimed"] == []
    assert m["eval_seconds"] == pytest.approx(sum(r["seconds"] for r in m["eval_runs"].values()), abs=0.1)
    assert {r["code_version"] for r in m["eval_runs"].values()} <= set(record.meta["code_versions"])


def test_hold_fraction_gives_error_free_steps():
    cfg = _cfg(**{"backprop_cloning.hold_fraction": 1.0})
    _, batches, errors_from, _ = bp.sample_stage(cfg, "local", None, torch.Generator().manual_seed(0), "cpu")
    assert errors_from == "errors" and all(torch.count_nonzero(e) == 0 for _, e in batches)
    _, batches, _, _ = bp.sample_stage(_cfg(), "local", None, torch.Generator().manual_seed(0), "cpu")
    assert all(torch.count_nonzero(e) == e.numel() for _, e in batches)


def test_hold_drift_reports_the_weight_held_over_time():
    cfg = _cfg()
    d = bp.hold_drift(bp.new_clone_lstm(cfg), cfg, steps=6, weights=(-0.5, 0.5), copies=2, every=3)
    assert d["steps"].tolist() == [3, 6] and d["ratio"].shape == (2, 2)
    assert torch.isfinite(d["ratio"]).all()
    assert d["bias"].shape == (2, 2)
    # A constant input (a background pixel) needs no random numbers: any seed, same result.
    lstm = bp.new_clone_lstm(cfg)
    a, b = (bp.hold_drift(lstm, cfg, steps=4, weights=(0.5,), copies=2, every=2, seed=s,
                          input_value=bp.background_value("mnist")) for s in (0, 1))
    assert torch.equal(a["ratio"], b["ratio"]) and torch.equal(a["bias"], b["bias"])
    c = bp.hold_drift(lstm, cfg, steps=4, weights=(0.5,), copies=2, every=2, seed=0)
    assert not torch.equal(a["ratio"], c["ratio"])


def test_background_value_is_a_blank_pixel_standardised():
    from vsml_lite.data import NORMALIZATION

    mean, std = NORMALIZATION["mnist"]
    assert bp.background_value("mnist") == pytest.approx(-mean / std)
    assert bp.background_value("mnist") == pytest.approx(-0.4242, abs=1e-4)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        bp.background_value("cifar")


def test_steady_fraction_gives_learners_one_constant_input():
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    _, batches, _, _ = bp.sample_stage(_cfg(**{"backprop_cloning.steady_fraction": 1.0}), "local", None, gen(), "cpu")
    xs = torch.stack([x for x, _ in batches])  # [rollout, G, n, 1]
    assert torch.equal(xs, xs[:1, :, :1].expand_as(xs))  # one value per learner, every copy and step
    assert xs[0, :, 0].unique().numel() == xs.shape[1]  # but a different one per learner
    # The default (0) leaves Table 1's fresh inputs and the random stream as they were.
    _, fresh, _, _ = bp.sample_stage(_cfg(), "local", None, gen(), "cpu")
    _, zero, _, _ = bp.sample_stage(_cfg(**{"backprop_cloning.steady_fraction": 0.0}), "local", None, gen(), "cpu")
    assert all(torch.equal(a, b) and torch.equal(e, f) for (a, e), (b, f) in zip(fresh, zero))
    assert fresh[0][0][0, :, 0].unique().numel() == fresh[0][0].shape[1]


def test_cloning_can_start_from_a_given_clone():
    local_only = {"backprop_cloning.shallow_iterations": 0, "backprop_cloning.deep_gt_iterations": 0,
                  "backprop_cloning.deep_own_iterations": 0, "backprop_cloning.local_iterations": 2}
    start = bp.new_clone_lstm(_cfg(), seed=123).state_dict()
    # With a zero learning rate, fine-tuning must hand back exactly the V_M it started from.
    frozen = bp.train_backprop_cloning(_cfg(**local_only, **{"backprop_cloning.lr": 0.0}), progress=False, init=start)
    assert all(torch.equal(v, start[k]) for k, v in frozen.lstm.state_dict().items())
    fresh = bp.train_backprop_cloning(_cfg(**local_only, **{"backprop_cloning.lr": 0.0}), progress=False)
    assert not torch.equal(fresh.lstm.w_hid, start["w_hid"])
    moved = bp.train_backprop_cloning(_cfg(**local_only), progress=False, init=start)
    assert not torch.equal(moved.lstm.w_hid, start["w_hid"])


def test_a_checkpoint_stores_one_copy_per_learner_of_the_pool(tmp_path):
    """The pool's copies are equal after averaging: a checkpoint keeps one per learner (with
    32 copies, the local stage's at the paper preset weighs 0.3 MB instead of 8), and resuming
    restores all."""
    cfg = vl.get_config("smoke").override({"device": "cpu", "backprop_cloning.local_iterations": 2,
                                           "backprop_cloning.local_copies": 8,
                                           "backprop_cloning.shallow_iterations": 0,
                                           "backprop_cloning.deep_gt_iterations": 0,
                                           "backprop_cloning.deep_own_iterations": 0})
    task = bp.BackpropCloningTask(cfg)
    task.step(0)
    state = task.state_dict()
    G, n = cfg.backprop_cloning.local_batch // cfg.backprop_cloning.local_copies, cfg.backprop_cloning.local_copies
    assert state["pool"]["copies"] == n and state["pool"]["state"][0][0].shape[0] == G
    torch.save(state["pool"], tmp_path / "p.pt")
    torch.save(state, tmp_path / "s.pt")
    torch.save(task.pool["state"], tmp_path / "w.pt")
    assert (tmp_path / "p.pt").stat().st_size < (tmp_path / "w.pt").stat().st_size / 4
    again = bp.BackpropCloningTask(cfg)
    again.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=False))
    for (h, c), (h2, c2) in zip(task.pool["state"], again.pool["state"]):
        assert torch.equal(h, h2) and torch.equal(c, c2)


def test_update_loss_weighs_weights_and_biases_as_asked():
    gen = torch.Generator().manual_seed(0)
    read = [(torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen))]
    target = [(torch.randn(2, 3, 4, generator=gen), torch.randn(2, 3, 4, generator=gen))]
    l1 = torch.nn.functional.smooth_l1_loss
    w_only = bp.curriculum._weight_loss(read, target, 0.5, part_weights=(1.0, 0.0))
    torch.testing.assert_close(w_only, l1(read[0][0] / 0.5, target[0][0] / 0.5))
    both = bp.curriculum._weight_loss(read, target, 0.5)
    torch.testing.assert_close(both, (l1(read[0][0] / 0.5, target[0][0] / 0.5) + l1(read[0][1] / 0.5, target[0][1] / 0.5)) / 2)


def test_cloning_can_start_from_chapter_2s_forward_clone(data_root):  # the task loads MNIST
    """``init_forward_clone`` starts V_M from the shipped forward clone: the same sub-LSTM."""
    cfg = _cfg(**{"backprop_cloning.init_forward_clone": "cpu", "backprop_cloning.hidden_size": 32,
                  "backprop_cloning.msg_size": 8})
    task = bp.BackpropCloningTask(cfg)
    record = vl.artifacts.load_artifact(vl.artifacts.pretrained_path("forward_cloning", "cpu"))
    for k, v in vl.cloning.load_forward_clone(record).state_dict().items():
        assert torch.equal(task.lstm.state_dict()[k], v), k
    with pytest.raises(FileNotFoundError, match="init_forward_clone='nowhere'"):
        bp.BackpropCloningTask(cfg.override({"backprop_cloning.init_forward_clone": "nowhere"}))
    with pytest.raises(ValueError, match="cell size 32 and message size 8, backprop cloning 16"):
        bp.BackpropCloningTask(cfg.override({"backprop_cloning.hidden_size": 16}))


def test_update_response_measures_one_connection_in_units_of_eta_e():
    cfg = _cfg()
    lstm = bp.new_clone_lstm(cfg, seed=2)
    xs, errors = (-1.0, 0.0, 0.7), (-0.5, 0.2)
    r = bp.update_response(lstm, cfg, xs, errors, weight=0.4)
    assert r["weight"].shape == r["bias"].shape == (2, 3)
    torch.testing.assert_close(r["target"], torch.tanh(torch.tensor(xs)))
    # Each (x, e) is its own connection: measured alone, it gives the same.
    alone = bp.update_response(lstm, cfg, (0.7,), (0.2,), weight=0.4)
    torch.testing.assert_close(alone["weight"][0, 0], r["weight"][1, 2])
    # In units of -η·e: the change read from the state after one step, divided by -η·e.
    net, scale, eta = bp.make_learner(lstm, cfg, [1, 1]), cfg.backprop_cloning.state_scale, bp.learning_rate(cfg)
    w0 = torch.full((1, 1, 1), 0.4)
    with torch.no_grad():
        state = bp.state_from_weights(net, [(w0, torch.zeros_like(w0))], 1, scale)
        state, inputs, _ = net.forward_phase(state, torch.tensor([[0.7]]))
        state, _ = net.backward_phase(state, inputs, torch.tensor([[0.2]]))
    (w, b), = bp.read_weights(state, 1, scale)
    torch.testing.assert_close(r["weight"][1, 2], (w[0, 0, 0] - 0.4) / (-eta * 0.2))
    torch.testing.assert_close(r["bias"][1, 2], b[0, 0, 0] / (-eta * 0.2))
    # A V_M that keeps its cell state (forget gate open, input gate shut) changes nothing.
    H = lstm.hidden_size
    with torch.no_grad():
        lstm.bias[:H], lstm.bias[2 * H:3 * H] = -60.0, 60.0
    still = bp.update_response(lstm, cfg, xs, errors, weight=0.4)
    assert still["weight"].abs().max() < 1e-3 and still["bias"].abs().max() < 1e-3
    with pytest.raises(ValueError, match="errors must be non-zero"):
        bp.update_response(lstm, cfg, xs, (0.0,))
    fig = vl.viz.plot_update_response({"test": r})
    assert len(fig.axes) == 1


def test_the_final_accuracy_is_measured_on_its_own_count_of_test_images():
    """The curves' points use ``eval_examples``; the accuracy after the last step uses
    ``final_eval_examples`` (0: the same count, and then it is the curve's last point). The
    table, the record's ``final`` and sgd_accuracy all read that final accuracy."""
    gen = torch.Generator().manual_seed(5)
    data = vl.TensorData(torch.randn(40, 16, generator=gen), torch.randint(10, (40,), generator=gen), "mnist", True)
    lstm = bp.new_clone_lstm(_cfg())
    runs = {}
    for final in (0, 40):
        cfg = _cfg(**{"backprop_cloning.test_steps": 6, "backprop_cloning.eval_every": 3,
                      "backprop_cloning.eval_examples": 8, "backprop_cloning.final_eval_examples": final,
                      "backprop_cloning.test_learner_batch": 4})
        out = bp.learning_curves(lstm, cfg, data, data, [16, 10], seeds=[0, 1], progress=False)
        assert bp.final_test_images(cfg) == (final or 8)
        for who in ("clone", "sgd"):
            assert out[who]["final_accuracy"].shape == (2,)
            # accuracies on n images are multiples of 1 / n
            torch.testing.assert_close(out[who]["final_accuracy"] * bp.final_test_images(cfg),
                                       (out[who]["final_accuracy"] * bp.final_test_images(cfg)).round())
        torch.testing.assert_close(bp.sgd_accuracy(cfg, data, data, [16, 10], [0, 1], bp.learning_rate(cfg)),
                                   out["sgd"]["final_accuracy"])
        row = bp.accuracy_table({"curriculum/mnist/shallow": {"curves": out}}, cfg)[0]
        assert row["test images"] == (final or 8)
        summary = bp.final_summary(out, cfg)
        assert summary["clone_mean"] == pytest.approx(out["clone"]["final_accuracy"].mean().item())
        assert summary["curve_clone_mean"] == pytest.approx(out["clone"]["test_accuracy"][:, -1].mean().item())
        runs[final] = out
    for who in ("clone", "sgd"):  # same learners, same curves; only the final measure differs
        torch.testing.assert_close(runs[0][who]["test_accuracy"], runs[40][who]["test_accuracy"])
        torch.testing.assert_close(runs[0][who]["final_accuracy"], runs[0][who]["test_accuracy"][:, -1])
    assert any(not torch.equal(runs[40][who]["final_accuracy"], runs[40][who]["test_accuracy"][:, -1])
               for who in ("clone", "sgd"))
    # A run made before the final accuracy existed reads its curve's last point.
    old = {who: {"test_accuracy": runs[40][who]["test_accuracy"]} for who in ("clone", "sgd")}
    acc, images = bp.final_accuracy(old, "clone", cfg)
    assert images == 8 and torch.equal(acc, runs[40]["clone"]["test_accuracy"][:, -1])


@pytest.mark.parametrize("setting", ["eval_examples", "final_eval_examples"])
def test_asking_for_more_test_images_than_the_split_has_is_refused(setting):
    cfg = _cfg(**{"backprop_cloning.eval_examples": 8, f"backprop_cloning.{setting}": 41,
                  "backprop_cloning.test_steps": 2})
    data = vl.TensorData(torch.randn(40, 16), torch.randint(10, (40,)), "mnist", True)
    with pytest.raises(ValueError, match=f"{setting}=41 is more than the 40 examples of the test split"):
        bp.learning_curves(bp.new_clone_lstm(cfg), cfg, data, data, [16, 10], seeds=[0], progress=False)
    with pytest.raises(ValueError, match=f"{setting}=41"):
        bp.sgd_accuracy(cfg, data, data, [16, 10], [0], 0.1)


def test_a_reevaluation_keeps_the_clones_and_the_earlier_evaluation(tmp_path, data_root):
    """Re-evaluating an artifact measures anew with the meta-test settings asked for, keeps
    V_M bit for bit, and keeps the earlier evaluation in the record; a cloning setting is refused."""
    from vsml_lite.backprop import curriculum, experiment

    cfg = _cfg(**{"backprop_cloning.test_steps": 2, "backprop_cloning.eval_every": 2,
                  "backprop_cloning.eval_examples": 8, "backprop_cloning.test_learner_batch": 2,
                  "backprop_cloning.test_seeds": 2, "backprop_cloning.fidelity_steps": 2})
    curve = {"steps": [1], "eval_steps": [1], **{who: {"train_loss": torch.zeros(2, 1), "test_accuracy": torch.ones(2, 1)}
                                                 for who in ("clone", "sgd")}}
    lstm, random = bp.new_clone_lstm(cfg), bp.new_clone_lstm(cfg)
    trained = curriculum.CloneTrainResult(lstm=lstm, curves={"iteration": [1]}, seconds=1.0,
                                          snapshots={"local": random.state_dict()}, code_versions=["old"])
    results = {bp.run_key(*e): {"fidelity": {}, "curves": curve, "seconds": 2.0, "code_version": "old"}
               for e in bp.EVALUATIONS}
    source = experiment.save_backprop_clone(tmp_path / "bp", cfg, trained, results)
    with pytest.raises(ValueError, match="not local_iterations"):
        bp.reevaluate_backprop_clone(source, tmp_path / "new", changes={"local_iterations": 3}, progress=False)
    path = bp.reevaluate_backprop_clone(source, tmp_path / "new", changes={"final_eval_examples": 16}, progress=False)
    before, after = vl.load_artifact(source), vl.load_artifact(path)
    for name in ("lstm", "lstm_random"):
        assert before.tensors[name].keys() == after.tensors[name].keys()
        assert all(torch.equal(before.tensors[name][k], after.tensors[name][k]) for k in before.tensors[name])
    m = after.meta["metrics"]
    assert m["earlier_evaluation"]["accuracy"] == before.meta["metrics"]["accuracy"]
    assert m["earlier_evaluation"]["final"] == before.meta["metrics"]["final"]
    assert {r["test images"] for r in m["accuracy"]} == {16}
    assert all(f["test_images"] == 16 and f["curve_test_images"] == 8 for f in m["final"].values())
    assert after.meta["config"]["backprop_cloning"]["final_eval_examples"] == 16
    assert after.meta["curves"] == before.meta["curves"] and m["train_seconds"] == 1.0
    assert before.meta["code_versions"] == ["old"]
    assert after.meta["code_versions"] == ["old", vl.artifacts.code_version()]  # then the new meta-test's
    assert not path.with_suffix(".eval.ckpt").exists()


def test_sgd_accuracy_is_the_last_point_of_the_sgd_curve():
    """sgd_accuracy runs the SGD side of learning_curves (same batches, same initial weights)
    at any rate; at the cloned rate it ends where the curve's SGD ends, and another rate
    ends elsewhere."""
    cfg = _cfg(**{"backprop_cloning.test_steps": 6, "backprop_cloning.eval_every": 3,
                  "backprop_cloning.eval_examples": 20, "backprop_cloning.test_learner_batch": 4})
    gen = torch.Generator().manual_seed(3)
    data = vl.TensorData(torch.randn(40, 16, generator=gen), torch.randint(10, (40,), generator=gen), "mnist", True)
    out = bp.learning_curves(bp.new_clone_lstm(cfg), cfg, data, data, [16, 10], seeds=[0, 1], progress=False)
    same = bp.sgd_accuracy(cfg, data, data, [16, 10], [0, 1], bp.learning_rate(cfg))
    torch.testing.assert_close(same, out["sgd"]["test_accuracy"][:, -1])
    faster = bp.sgd_accuracy(cfg, data, data, [16, 10], [0, 1], 50 * bp.learning_rate(cfg))
    assert not torch.equal(faster, same)


def test_the_meta_test_runs_shallow_runs_first_and_reports_in_the_chapters_order(monkeypatch, tmp_path):
    from vsml_lite.backprop import experiment

    ran = []
    monkeypatch.setattr(experiment, "load_split", lambda cfg, name, train: None)
    monkeypatch.setattr(experiment, "fidelity", lambda *a, **k: {})
    monkeypatch.setattr(experiment, "learning_curves", lambda *a, desc, **k: ran.append(desc) or {"desc": desc})
    cfg = vl.get_config("smoke")
    lstms = {c: None for c in bp.CLONES}
    out = experiment.evaluate_clones(cfg, lstms, cache=tmp_path / "eval.ckpt", progress=False)
    keys = [experiment.run_key(*e) for e in experiment.EVALUATIONS]
    assert ran == [k for k in keys if not k.endswith("deep")] + [k for k in keys if k.endswith("deep")]
    assert list(out) == keys and all(out[k]["curves"]["desc"] == k for k in keys)
    assert all(out[k]["seconds"] >= 0 and out[k]["code_version"] == vl.artifacts.code_version() for k in keys)
    # A second call finds every run in the cache and runs none again.
    assert list(experiment.evaluate_clones(cfg, lstms, cache=tmp_path / "eval.ckpt", progress=False)) == keys
    assert len(ran) == len(keys)


def test_a_record_counts_only_timed_runs_and_names_the_others(tmp_path):
    """Runs cached before runs were timed lack their seconds: the record's meta-test time is then
    the timed runs' sum, and the untimed runs are named rather than counted as zero."""
    from vsml_lite.backprop import curriculum, experiment

    cfg = _cfg()
    curve = {"steps": [1], "eval_steps": [1], **{who: {"train_loss": torch.zeros(2, 1), "test_accuracy": torch.ones(2, 1)}
                                                 for who in ("clone", "sgd")}}
    results = {"curriculum/mnist/shallow": {"fidelity": {}, "curves": curve, "seconds": 2.5, "code_version": "new"},
               "curriculum/mnist/deep": {"fidelity": {}, "curves": curve}}
    lstm = bp.new_clone_lstm(cfg)
    trained = curriculum.CloneTrainResult(lstm=lstm, curves={}, seconds=1.0, snapshots={"local": lstm.state_dict()},
                                          code_versions=["old"])
    meta = vl.load_artifact(experiment.save_backprop_clone(tmp_path / "bp", cfg, trained, results)).meta
    assert meta["metrics"]["eval_seconds"] == 2.5 and meta["metrics"]["eval_untimed"] == ["curriculum/mnist/deep"]
    assert meta["code_versions"] == ["old", "new"]
    assert bp.meta_test_time(meta["metrics"]) == "2.5 s, not counting 1 run cached before runs were timed"
    assert bp.meta_test_time({"eval_seconds": 4716.4}) == "4,716.4 s in the session that finished it"
    assert bp.meta_test_time({"eval_seconds": 9.0, "eval_runs": {}, "eval_untimed": []}) == "9.0 s"


def _meta_test_cfg():
    return _cfg(**{"backprop_cloning.test_steps": 8, "backprop_cloning.eval_every": 3,
                   "backprop_cloning.eval_examples": 20, "backprop_cloning.test_learner_batch": 4})


def _assert_same_curves(a, b):
    assert a["eval_steps"] == b["eval_steps"] and a["steps"] == b["steps"]
    for who in ("clone", "sgd"):
        for what in ("train_loss", "test_accuracy"):
            torch.testing.assert_close(a[who][what], b[who][what], rtol=0, atol=0, equal_nan=True, msg=f"{who} {what}")


def test_a_meta_test_run_resumes_bit_for_bit_from_a_snapshot():
    """A paper-scale meta-test run takes hours: it hands over snapshots (one copy per learner,
    since averaging makes the copies equal) and continues from one exactly."""
    cfg = _meta_test_cfg()
    gen = torch.Generator().manual_seed(5)
    data = vl.TensorData(torch.randn(40, 16, generator=gen), torch.randint(10, (40,), generator=gen), "mnist", True)
    lstm, sizes = bp.new_clone_lstm(cfg), [16, 4, 10]
    args = (lstm, cfg, data, data, sizes)
    straight = bp.learning_curves(*args, seeds=[0, 1], progress=False)
    snaps = []
    _assert_same_curves(bp.learning_curves(*args, seeds=[0, 1], progress=False, snapshot=snaps.append,
                                           snapshot_seconds=0), straight)
    assert [s["step"] for s in snaps] == list(range(1, 8))  # after every step but the last
    assert snaps[4]["state"][0]["h"].shape[0] == 2  # one copy of each of the 2 learners
    for t in (snaps[4]["state"][0]["h"], snaps[4]["state"][0]["c"]):  # and no more is saved: not a view
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size()  # of all copies' storage
    for at in (2, 4):  # from step 3 (just after an accuracy point) and from step 5
        _assert_same_curves(bp.learning_curves(*args, seeds=[0, 1], progress=False, resume=snaps[at]), straight)
    with pytest.raises(ValueError, match="the snapshot is of a run with seeds"):
        bp.learning_curves(*args, seeds=[0, 2], progress=False, resume=snaps[4])
    late = []  # a deadline already past: one step, a snapshot, no result
    assert bp.learning_curves(*args, seeds=[0, 1], progress=False, snapshot=late.append, deadline=0.0) is None
    assert [s["step"] for s in late] == [1]


def test_a_meta_test_interrupted_part_way_through_a_run_resumes_it(tmp_path, monkeypatch, interrupt_on_call):
    from vsml_lite.backprop import experiment

    cfg = _meta_test_cfg()
    gen = torch.Generator().manual_seed(6)
    data = vl.TensorData(torch.randn(40, 16, generator=gen), torch.randint(10, (40,), generator=gen), "mnist", True)
    monkeypatch.setattr(experiment, "load_split", lambda cfg, name, train: data)
    lstms = {c: bp.new_clone_lstm(cfg) for c in bp.CLONES}
    runs = (("curriculum", "mnist", "shallow"),)
    straight = experiment.evaluate_clones(cfg, lstms, cache=tmp_path / "a.ckpt", progress=False, evaluations=runs)
    cache = tmp_path / "b.ckpt"
    restore = interrupt_on_call(experiment, "mlp_sgd_step", 5)  # Ctrl-C during step 5 of 8
    with pytest.raises(KeyboardInterrupt, match="stopped at step 5 of 8"):
        experiment.evaluate_clones(cfg, lstms, cache=cache, progress=False, evaluations=runs)
    restore()
    partial = vl.artifacts.load_checkpoint(cache)["partial"]
    assert partial["key"] == "curriculum/mnist/shallow" and partial["snapshot"]["step"] == 5
    resumed = experiment.evaluate_clones(cfg, lstms, cache=cache, progress=False, evaluations=runs)
    key = "curriculum/mnist/shallow"
    _assert_same_curves(resumed[key]["curves"], straight[key]["curves"])
    assert resumed[key]["fidelity"] == straight[key]["fidelity"]
    assert resumed[key]["code_versions"] == [vl.artifacts.code_version()]
    assert resumed[key]["seconds"] >= partial["seconds"]
    assert "partial" not in vl.artifacts.load_checkpoint(cache)
