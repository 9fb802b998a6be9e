"""Compiled training steps equal the eager ones (on the CPU, with Inductor's CPU backend; the
same code runs on CUDA with CUDA graphs), and a compiler failure falls back to eager."""

import pytest
import torch

import vsml_lite as vl
from vsml_lite import backprop as bp
from vsml_lite import cloning, compiled
from vsml_lite import metalearn as ml


@pytest.fixture
def eager_ticks(monkeypatch):
    """The folded eager ticks (what runs on a GPU) instead of the CPU's fused C++ kernel, which
    the compiler cannot look into."""
    monkeypatch.setattr(vl.fused, "available", lambda: False)


def _assert_same(a, b):
    for ma, mb in zip(a, b):
        for k in ma:
            torch.testing.assert_close(ma[k], mb[k], rtol=1e-4, atol=1e-6, msg=k)


def _run_both(make, cfg, iterations):
    """Build the task eagerly and compiled (Inductor's default mode), run both for
    ``iterations`` steps; the metrics and the weights must agree. Returns the compiled task."""
    eager, fast = make(cfg.override({"compile": "off"})), make(cfg.override({"compile": "default"}))
    _assert_same([eager.step(i) for i in range(iterations)], [fast.step(i) for i in range(iterations)])
    for (k, a), (_, b) in zip(eager.lstm.state_dict().items(), fast.lstm.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=k)
    return fast


@pytest.mark.slow
def test_compiled_forward_cloning_step_equals_eager(eager_ticks):
    cfg = vl.get_config("smoke").override({"device": "cpu", "forward_cloning.batch_size": 64})
    fast = _run_both(cloning.ForwardCloningTask, cfg, 3)
    assert fast.loss.compiled, fast.loss.error
    assert not cloning.ForwardCloningTask(cfg.override({"compile": "off"})).loss.compiled


def _stage_only(stage: str, iterations: int, device: str = "cpu") -> vl.Config:
    """The smoke preset's backprop cloning with ``iterations`` of ``stage`` and no other stage."""
    return vl.get_config("smoke").override({"device": device, **{f"backprop_cloning.{s}_iterations": 0
                                                                 for s in bp.STAGES},
                                            f"backprop_cloning.{stage}_iterations": iterations})


@pytest.mark.slow
def test_compiled_backprop_cloning_rollout_equals_eager(eager_ticks):
    fast = _run_both(bp.BackpropCloningTask, _stage_only("local", 2), 2)
    assert fast.rollouts["local"].compiled, fast.rollouts["local"].error


@pytest.mark.slow
def test_compiled_network_stage_rollout_equals_eager(eager_ticks):
    """Stage ``shallow``: a network of cloned sub-LSTMs on MNIST labels, whose ground truth
    once came from torch.autograd.grad inside the compiled rollout."""
    fast = _run_both(bp.BackpropCloningTask, _stage_only("shallow", 2), 2)
    assert fast.rollouts["shallow"].compiled, fast.rollouts["shallow"].error
    assert fast.warmup_step.compiled, fast.warmup_step.error  # the fresh learners' warm-up SGD


@pytest.mark.parametrize("stage", ["local", "shallow", "deep_gt", "deep_own"])
def test_every_curriculum_stage_rollout_compiles_into_one_graph(eager_ticks, stage):
    """A graph break splits a compiled rollout into one graph per break, and on a GPU each
    graph is a CUDA-graph replay with eager work between them: the paper preset's stage
    ``shallow`` ran 22,834 kernel launches per iteration compiled or not
    (benchmarks/gpu-nvidia-h200.json) while ``torch.autograd.grad`` broke every step."""
    import functools

    import torch._dynamo as dynamo

    from vsml_lite.backprop import curriculum as cur

    cfg = vl.get_config("smoke").override({"device": "cpu"})
    task, p = bp.BackpropCloningTask(cfg), cfg.backprop_cloning
    learner = task.learners[stage]
    weights, batches, errors_from, given = cur.sample_stage(cfg, stage, task.data, task.gen, task.device)
    weights, start = cur._refresh_pool({}, learner, weights, None, batches[0][0].shape[1], p.state_scale)
    explained = dynamo.explain(functools.partial(cur.rollout_losses, learner))(
        weights, batches, bp.learning_rate(cfg), p.value_unit, p.state_scale, p.update_unit, errors_from, given,
        state=start, part_weights=p.update_part_weights)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


@pytest.mark.slow
def test_compiled_meta_training_step_equals_eager(eager_ticks):
    cfg = vl.get_config("smoke").override({"device": "cpu", "meta_learning.episode_length": 4,
                                           "meta_learning.meta_batch": 2, "meta_learning.checkpoint_chunk": 2})
    gen = torch.Generator().manual_seed(0)
    data = vl.TensorData(torch.randn(20, 16, generator=gen), torch.randint(10, (20,), generator=gen), "mnist", True)
    eager = ml.MetaTrainingTask(cfg.override({"compile": "off"}), "vsml", data)
    fast = ml.MetaTrainingTask(cfg.override({"compile": "default"}), "vsml", data)
    # Compare the meta-gradients, not the weights after Adam steps: the output bias gets a
    # gradient that is 0 but for rounding (a shift of every logit leaves softmax as it is),
    # and Adam turns rounding noise of either sign into a full step.
    for _ in range(2):
        _assert_same([eager.meta_gradient()], [fast.meta_gradient()])
        assert fast.learner_step.compiled, fast.learner_step.error
        for (k, a), (_, b) in zip(eager.learner.named_parameters(), fast.learner.named_parameters()):
            if a.grad is not None:
                torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-7, msg=k)


def test_a_compiler_failure_falls_back_to_eager(monkeypatch):
    def broken(fn, **kw):
        def run(*args, **kwargs):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    step = compiled.Step(lambda x: x * 2, "default", "doubling")
    with pytest.warns(UserWarning, match="doubling runs eagerly.*no compiler here"):
        assert step(torch.tensor(3.0)) == 6.0
    assert not step.compiled and "no compiler here" in step.error
    assert step(torch.tensor(4.0)) == 8.0  # eager from then on, without another warning


def test_compile_settings():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compiled.resolve("auto", cpu) is None
    assert compiled.resolve("auto", cuda) == "reduce-overhead"
    assert compiled.resolve("auto", cuda, graphs=False) == "default"
    assert compiled.resolve("off", cuda) is None and compiled.resolve("default", cpu) == "default"
    with pytest.raises(ValueError, match="unknown compile setting 'fast'; valid: auto, off"):
        compiled.resolve("fast", cpu)
    with pytest.raises(ValueError, match="config compile='fast' is not allowed; allowed: one of 'auto', 'off'"):
        vl.get_config("smoke").override({"compile": "fast", "device": "cpu"})


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_steps_equal_eager_on_cuda(mode):
    """On a GPU: forward cloning and backprop cloning's stages `local` and `shallow`, compiled
    (with CUDA graphs under reduce-overhead) against eager, a few iterations from the same start."""
    base = vl.get_config("smoke").override({"device": "cuda", "forward_cloning.batch_size": 512,
                                            "backprop_cloning.local_iterations": 2,
                                            "backprop_cloning.shallow_iterations": 2,
                                            "backprop_cloning.deep_gt_iterations": 0,
                                            "backprop_cloning.deep_own_iterations": 0})
    for make, its in ((cloning.ForwardCloningTask, 4), (bp.BackpropCloningTask, 4)):
        eager, fast = make(base.override({"compile": "off"})), make(base.override({"compile": mode}))
        le = [{k: v.clone() for k, v in eager.step(i).items()} for i in range(its)]
        lf = [{k: v.clone() for k, v in fast.step(i).items()} for i in range(its)]
        _assert_same(le, lf)
        for (k, a), (_, b) in zip(eager.lstm.state_dict().items(), fast.lstm.state_dict().items()):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5, msg=k)
