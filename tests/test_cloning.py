"""Chapter 3: forward cloning (Eq. 13) trains, checkpoints, resumes and saves artifacts."""

import json

import pytest
import torch

import vsml_lite as vl
from vsml_lite import cloning


def _cfg(iterations=60, **kw):
    changes = {"forward_cloning.iterations": iterations, "forward_cloning.batch_size": 64,
               "forward_cloning.log_every": 10, "forward_cloning.checkpoint_every": 20,
               "forward_cloning.grid_x": 11, "forward_cloning.grid_w": 7, "device": "cpu"}
    changes.update(kw)
    return vl.get_config("smoke").override(changes)


def test_state_holds_weight_and_bias_scaled_down():
    w, b = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    h, c = cloning.initial_cell_state(w, b, hidden_size=32)
    assert h.shape == c.shape == (2, 1, 1, 32)
    torch.testing.assert_close(c[:, 0, 0, cloning.WEIGHT_SLOT], w / cloning.OUTPUT_SCALE)
    torch.testing.assert_close(h[:, 0, 0, cloning.BIAS_SLOT], b / cloning.OUTPUT_SCALE)
    assert torch.count_nonzero(c[..., 2:]) == 0


def test_predict_uses_the_network_tick_and_checks_shapes():
    cfg = _cfg()
    lstm = cloning.new_sub_lstm(cfg)
    x, w, b = cloning.sample_batch(5, 2.0, 2.0, torch.Generator().manual_seed(0))
    y = cloning.predict(lstm, x, w, b)
    assert y.shape == (5,)
    with pytest.raises(ValueError, match="1-D of equal length"):
        cloning.predict(lstm, x, w[:3], b)
    torch.testing.assert_close(cloning.target(x, w, b), torch.tanh(x) * w + b)


def test_training_reduces_the_error():
    cfg = _cfg(iterations=300, **{"forward_cloning.batch_size": 128})
    result = cloning.train_forward_cloning(cfg, progress=False)
    assert result.losses[-1] < 0.5 * result.losses[0]
    trained = cloning.error_metrics(result.lstm, cfg)["mean_abs_error"]
    untrained = cloning.error_metrics(cloning.new_sub_lstm(cfg), cfg)["mean_abs_error"]
    assert trained < 0.5 * untrained


def test_interrupted_training_resumes_to_the_same_result(tmp_path, interrupt_on_call):
    cfg = _cfg(iterations=60)
    straight = cloning.train_forward_cloning(cfg, progress=False)

    ckpt = tmp_path / "run.ckpt"
    restore = interrupt_on_call(cloning, "sample_batch", 33)  # Ctrl-C in the middle of iteration 33
    with pytest.raises(KeyboardInterrupt, match="stopped at iteration 33"):
        cloning.train_forward_cloning(cfg, checkpoint=ckpt, progress=False)
    assert torch.load(ckpt, weights_only=False)["iteration"] == 33
    restore()
    resumed = cloning.train_forward_cloning(cfg, checkpoint=ckpt, progress=False)
    assert resumed.resumed_from == 33
    for (k, a), (_, b) in zip(straight.lstm.state_dict().items(), resumed.lstm.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert resumed.losses == pytest.approx(straight.losses)


def test_checkpoint_from_another_config_is_refused(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    cloning.train_forward_cloning(_cfg(iterations=20), checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="another config"):
        cloning.train_forward_cloning(_cfg(iterations=20, seed=5), checkpoint=ckpt, progress=False)


def test_artifact_round_trip_records_what_made_it(tmp_path):
    cfg = _cfg(iterations=20)
    result = cloning.train_forward_cloning(cfg, progress=False)
    path = cloning.save_forward_clone(tmp_path / "clone", cfg, result)
    record = vl.load_artifact(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    for key in ("kind", "preset", "seed", "config", "code_version", "metrics", "curves"):
        assert key in meta
    assert vl.Config.from_dict(meta["config"]) == cfg
    lstm = cloning.load_forward_clone(record)
    x, w, b = cloning.sample_batch(4, 2.0, 2.0, torch.Generator().manual_seed(1))
    torch.testing.assert_close(cloning.predict(lstm, x, w, b), cloning.predict(result.lstm, x, w, b))


def test_missing_artifact_names_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/"):
        vl.load_artifact(tmp_path / "nothing")


@pytest.mark.parametrize("preset", ["cpu"])
def test_shipped_artifact_loads_and_meets_its_metrics(preset):
    record = vl.load_artifact(vl.pretrained_path(cloning.KIND, preset))
    assert record.meta["preset"] == preset
    cfg = vl.Config.from_dict(record.meta["config"])
    lstm = cloning.load_forward_clone(record)
    recomputed = cloning.error_metrics(lstm, cfg)
    assert recomputed["mean_abs_error"] == pytest.approx(record.meta["metrics"]["trained"]["mean_abs_error"], rel=1e-4)
    assert recomputed["mean_abs_error"] < 0.1 * recomputed["mean_abs_target"]


def test_train_and_save_writes_under_live_dir_and_removes_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(vl.artifacts.LIVE_ENV_VAR, str(tmp_path))
    path = cloning.train_and_save(_cfg(iterations=20), progress=False)
    assert path == tmp_path / "forward_cloning_smoke"
    assert path.with_suffix(".pt").exists() and path.with_suffix(".json").exists()
    assert not path.with_suffix(".ckpt").exists()


def test_code_version_is_the_code_imported_not_the_code_at_save_time(monkeypatch):
    before = vl.artifacts.code_version()

    def no_git(*args, **kw):
        raise AssertionError("code_version ran git again")

    monkeypatch.setattr(vl.artifacts.subprocess, "run", no_git)
    assert vl.artifacts.code_version() == before
    assert before.startswith(vl.__version__)
