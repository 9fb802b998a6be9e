"""Chapter 6: CMA-ES on the cloned learner's V_M; the population axis; torch.distributed."""

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vsml_lite as vl
from vsml_lite import backprop as bp
from vsml_lite import improve

ROOT = Path(__file__).resolve().parent.parent


def _cfg(**changes):
    return vl.get_config("smoke").override({"device": "cpu", **changes})


def _toy(side=4, n=60, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return vl.TensorData(torch.randn(n, side * side, generator=gen), torch.randint(10, (n,), generator=gen),
                         "mnist", True)


def test_vectors_round_trip():
    lstm = bp.new_clone_lstm(_cfg())
    v = improve.to_vector(lstm)
    assert v.dtype == torch.float64 and v.numel() == lstm.num_meta_variables()
    again = improve.load_vector(lstm, v)
    for (k, a), (_, b) in zip(lstm.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    with pytest.raises(ValueError, match=r"vectors must be \[P, 6800\]"):
        improve.from_vectors(lstm, torch.zeros(1, 5))


@pytest.mark.parametrize("batched", [True, False])
def test_the_population_axis_equals_one_learner_per_candidate(batched):
    """vmap over candidates (batched) and the fused one-by-one path give what the plain
    cloned learner gives for each of them."""
    cfg = _cfg()
    lstm = bp.new_clone_lstm(cfg)
    start = improve.to_vector(lstm)
    gen = torch.Generator().manual_seed(1)
    vectors = start[None] + 0.05 * torch.randn(3, start.numel(), generator=gen, dtype=torch.float64)
    sizes = [16, 10]
    weights = bp.init_weights(sizes, 1, gen)
    xs, ys = torch.randn(5, 4, 16, generator=gen), torch.randint(10, (5, 4), generator=gen)
    batched = improve.population_losses(lstm, vectors, cfg, sizes, weights, xs, ys, chunk=2, batched=batched)
    assert batched.shape == (3, 5)
    for k in range(3):
        learner = bp.make_learner(improve.load_vector(lstm, vectors[k]), cfg, sizes)
        with torch.no_grad():
            state = bp.state_from_weights(learner, weights, 4, cfg.backprop_cloning.state_scale)
            for t in range(5):
                state, logits = learner.learn_step(state, xs[t], ys[t])
                loss = torch.nn.functional.cross_entropy(logits, ys[t])
                torch.testing.assert_close(batched[k, t], loss, rtol=1e-5, atol=1e-5)


def test_claims_are_decided_by_the_numbers():
    cfg = _cfg()

    def rows(m_imp, f_imp, f_std):
        early = {("mnist", "clone"): (1.0, 0.1), ("mnist", "improved"): (m_imp, 0.1), ("mnist", "sgd"): (0.9, 0.1),
                 ("fashion_mnist", "clone"): (1.2, f_std), ("fashion_mnist", "improved"): (f_imp, 0.1),
                 ("fashion_mnist", "sgd"): (1.1, 0.1)}
        return [{"dataset": ds, "_name": n, "_early": m, "_early_std": s} for (ds, n), (m, s) in early.items()]

    assert [c["holds"] for c in improve.check_claims(rows(0.9, 1.25, 0.1), cfg)] == [True, True]
    assert [c["holds"] for c in improve.check_claims(rows(1.05, 1.35, 0.1), cfg)] == [False, False]
    assert "improved 1.350, clone 1.200 ± 0.100" in improve.check_claims(rows(1.05, 1.35, 0.1), cfg)[1]["measured"]


def test_interrupted_search_resumes_the_same_search(tmp_path, interrupt_on_call):
    cfg = _cfg(**{"improve.generations": 4})
    clone_cfg = cfg
    lstm = bp.new_clone_lstm(cfg)
    train = _toy()
    straight = improve.search(cfg, lstm, clone_cfg, train, progress=False)
    ckpt = tmp_path / "search.ckpt"
    restore = interrupt_on_call(improve, "generation_task", 2)  # Ctrl-C during generation 2
    with pytest.raises(KeyboardInterrupt, match="CMA-ES stopped at iteration 2"):
        improve.search(cfg, lstm, clone_cfg, train, checkpoint=ckpt, progress=False)
    restore()
    resumed = improve.search(cfg, lstm, clone_cfg, train, checkpoint=ckpt, progress=False)
    assert resumed.resumed_from == 2
    torch.testing.assert_close(resumed.mean, straight.mean, rtol=0, atol=0)
    assert resumed.history == straight.history
    assert straight.history["mean_loss"][0] == straight.history["clone_loss"][0]  # the mean starts at the clone
    with pytest.raises(ValueError, match="another config"):
        improve.search(cfg.override({"seed": 5}), lstm, clone_cfg, train, checkpoint=ckpt, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_search_equals_the_single_process_one(tmp_path, data_root):
    """Two gloo processes launched by torchrun find exactly what one process finds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VSML_DATA": str(data_root)}
    script = str(ROOT / "scripts" / "improve_backprop.py")
    args = ["--preset", "smoke", "--device", "cpu", "--search-only"]
    single, spread = tmp_path / "single.pt", tmp_path / "spread.pt"
    subprocess.run([sys.executable, script, *args, str(single)], env=env, check=True, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), script, *args, str(spread)],
                   env=env, check=True, timeout=300)
    a, b = torch.load(single), torch.load(spread)
    assert a["processes"] == 1 and b["processes"] == 2
    torch.testing.assert_close(a["mean"], b["mean"], rtol=0, atol=0)
    assert a["history"] == b["history"]


def test_a_scripts_process_group_ends_with_its_run_also_on_an_error(tmp_path, monkeypatch):
    """``process_group_from_env`` destroys the group it started when the block ends, whether the
    run returned or raised: a gloo group left to interpreter shutdown can abort the process
    (the cause of a failed torchrun launch of the test above). Outside torchrun it starts
    nothing and yields (0, 1)."""
    import torch.distributed as dist

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with vl.distributed.process_group_from_env() as (rank, world):
        assert (rank, world) == (0, 1) and not dist.is_initialized()
    for fails in (False, True):
        init = tmp_path / f"init{fails}"

        def start_one_process_group():
            dist.init_process_group("gloo", init_method=f"file://{init}", rank=0, world_size=1)
            return True

        monkeypatch.setattr(vl.distributed, "init_distributed_from_env", start_one_process_group)
        with pytest.raises(RuntimeError, match="the run failed") if fails else contextlib.nullcontext():
            with vl.distributed.process_group_from_env() as (rank, world):
                assert dist.is_initialized() and (rank, world) == (0, 1)
                if fails:
                    raise RuntimeError("the run failed")
        assert not dist.is_initialized()


def test_unknown_source_clone_is_an_error():
    with pytest.raises(ValueError, match="config improve.source_clone='teacher' is not allowed"):
        _cfg(**{"improve.source_clone": "teacher"})


def test_end_to_end_smoke_artifact(tmp_path, data_root):
    cfg = _cfg()
    path = improve.train_and_save(cfg, tmp_path / "imp", progress=False)
    record = vl.load_artifact(path)
    meta = record.meta
    assert meta["kind"] == improve.KIND and meta["preset"] == "smoke" and meta["seed"] == cfg.seed
    assert vl.Config.from_dict(meta["config"]) == cfg
    assert meta["metrics"]["population"] == cfg.improve.population
    assert len(meta["curves"]["search"]["mean_loss"]) == cfg.improve.generations
    assert not list(tmp_path.glob("*.ckpt"))
    loaded = improve.load_improved(record)
    torch.testing.assert_close(improve.to_vector(loaded["improved"]), record.tensors["improved"].float().double())
    _, source = improve.load_source_clone(cfg)
    torch.testing.assert_close(improve.to_vector(loaded["clone"]), improve.to_vector(source))
    rows = improve.results_table(record.tensors["curves"], loaded["cfg"])
    assert improve.check_claims(rows, loaded["cfg"]) == meta["metrics"]["claims"]
