"""The one training loop: checkpoints safe under concurrency, the non-finite guard, deadlines,
the config guard and the code versions a checkpoint records."""

import multiprocessing as mp

import pytest
import torch

import vsml_lite as vl
from vsml_lite import cloning, training
from vsml_lite import metalearn as ml


class Fit:
    """A toy task: fit one number by SGD (the example of the module docstring)."""

    name, total, log_every, checkpoint_every = "fit", 30, 5, 10

    def __init__(self, poison_at=None):
        self.x = torch.zeros((), requires_grad=True)
        self.opt = torch.optim.SGD([self.x], lr=0.1)
        self.poison_at = poison_at

    def step(self, iteration):
        loss = (self.x - 3) ** 2
        if iteration == self.poison_at:
            loss = loss * float("nan")
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    def state_dict(self):
        return {"x": self.x.detach().clone(), "opt": self.opt.state_dict()}

    def load_state_dict(self, s):
        with torch.no_grad():
            self.x.copy_(s["x"])
        self.opt.load_state_dict(s["opt"])


def test_a_toy_task_runs_logs_and_resumes_bit_for_bit(tmp_path):
    straight = training.run(Fit(), progress=False)
    assert straight.finished and straight.done == 30
    assert straight.history["iteration"] == [5, 10, 15, 20, 25, 30]
    assert straight.history["loss"][-1] < straight.history["loss"][0]

    ckpt = tmp_path / "fit.ckpt"
    first = training.run(Fit(), ckpt, {"lr": 0.1}, progress=False, deadline=0.0)  # out of time at once
    assert not first.finished and first.done == 1
    second_task = Fit()
    second = training.run(second_task, ckpt, {"lr": 0.1}, progress=False)
    assert second.finished and second.resumed_from == 1
    assert second.history == straight.history
    torch.testing.assert_close(second_task.x.detach(), torch.tensor(3.0) + (Fit().x.detach() - 3) * 0.8 ** 30,
                               rtol=1e-5, atol=1e-6)


def test_the_checkpoint_records_guard_and_code_version_and_refuses_another_guard(tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    training.run(Fit(), ckpt, {"lr": 0.1}, progress=False, deadline=0.0)
    state = torch.load(ckpt, weights_only=False)
    assert state["code_version"] == vl.artifacts.code_version() == state["code_versions"][-1]
    assert state["guard"] == {"lr": 0.1} and state["iteration"] == 1
    with pytest.raises(ValueError, match="another config"):
        training.run(Fit(), ckpt, {"lr": 0.2}, progress=False)


def test_the_device_is_not_part_of_the_guard():
    """A campaign moves a run between a GPU window and the CPU: the device may change."""
    cfg = vl.get_config("smoke")
    assert training.config_guard(cfg.override({"device": "cpu"})) == training.config_guard(cfg.override({"device": "auto"}))
    assert training.config_guard(cfg) != training.config_guard(cfg.override({"seed": 1}))
    assert training.config_guard(cfg, model="vsml") != training.config_guard(cfg, model="meta_rnn")


def test_a_nan_stops_the_run_names_the_iteration_and_keeps_the_last_good_checkpoint(tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(training.NonFiniteError, match=r"loss became NaN or infinite at iteration 13.*iteration 10"):
        training.run(Fit(poison_at=12), ckpt, {}, progress=False)
    state = torch.load(ckpt, weights_only=False)
    assert state["iteration"] == 10 and torch.isfinite(state["task"]["x"])


def test_a_nan_pixel_stops_meta_training_and_no_artifact_is_written(tmp_path):
    """One NaN pixel in the data used to turn V_M into NaN and still write an artifact."""
    cfg = vl.get_config("smoke").override({
        "device": "cpu", "meta_learning.input_side": 4, "meta_learning.episode_length": 4,
        "meta_learning.meta_batch": 2, "meta_learning.iterations": 8, "meta_learning.log_every": 2,
        "meta_learning.checkpoint_every": 2, "meta_learning.checkpoint_chunk": 0})
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(8, 16, generator=gen)
    images[:, 3] = float("nan")  # every image: the first episode meets it
    data = vl.TensorData(images, torch.randint(10, (8,), generator=gen), "mnist", True)
    with pytest.raises(training.NonFiniteError, match="at iteration 1"):
        ml.meta_train(cfg, "vsml", checkpoint=tmp_path / "m.ckpt", progress=False, data=data)
    assert not (tmp_path / "m.ckpt").exists()


def test_a_nan_in_the_weights_is_never_checkpointed(tmp_path, monkeypatch):
    """A NaN gradient poisons V_M before any loss shows it: the checkpoint refuses to save it."""
    cfg = vl.get_config("smoke").override({"device": "cpu", "forward_cloning.iterations": 20,
                                           "forward_cloning.batch_size": 16, "forward_cloning.log_every": 10,
                                           "forward_cloning.checkpoint_every": 3})
    real = cloning.ForwardCloningTask.step

    def poisoned(self, iteration):
        out = real(self, iteration)
        if iteration == 5:  # the 6th step: V_M goes NaN after its loss was computed
            with torch.no_grad():
                self.lstm.w_hid.fill_(float("nan"))
        return out

    monkeypatch.setattr(cloning.ForwardCloningTask, "step", poisoned)
    ckpt = tmp_path / "fwd.ckpt"
    with pytest.raises(training.NonFiniteError, match="w_hid"):
        cloning.train_forward_cloning(cfg, checkpoint=ckpt, progress=False)
    state = torch.load(ckpt, weights_only=False)
    assert state["iteration"] == 3
    assert torch.isfinite(state["task"]["lstm"]["w_hid"]).all()


def _writer(path, seed, rounds):
    payload = {"w": torch.randn(250_000, generator=torch.Generator().manual_seed(seed)), "seed": seed}
    for _ in range(rounds):
        vl.artifacts.save_checkpoint(path, payload)


def test_many_writers_on_one_checkpoint_never_leave_a_torn_file(tmp_path):
    """Four processes write one path over and over while this one reads it: every read is a
    whole checkpoint of one of the writers (a fixed temporary name gave 30+ unreadable reads)."""
    path = tmp_path / "shared.ckpt"
    vl.artifacts.save_checkpoint(path, {"w": torch.zeros(1), "seed": -1})
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(path, s, 25)) for s in range(4)]
    for w in writers:
        w.start()
    reads, seen = 0, set()
    while any(w.is_alive() for w in writers) or reads < 20:
        state = vl.artifacts.load_checkpoint(path)  # raises on a torn file
        if state["seed"] >= 0:
            assert state["w"].numel() == 250_000
        seen.add(state["seed"])
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert len(seen - {-1}) >= 2, "the writers did not overlap; the test proves nothing"
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_a_field_added_since_the_checkpoint_resumes_at_its_default():
    """A campaign's checkpoint outlives code changes: a config field added later, at its
    default, does not refuse it; a changed or unknown field does."""
    cfg = vl.get_config("paper")
    old = training.config_guard(cfg)
    del old["backprop_cloning"]["fidelity_steps"]  # made before this field existed
    assert training.same_guard(old, training.config_guard(cfg))
    assert not training.same_guard(old, training.config_guard(cfg.override({"backprop_cloning.fidelity_steps": 7})))
    assert not training.same_guard({**old, "no_such_section": {}}, training.config_guard(cfg))
    assert training.same_guard({**old, "model": "vsml"}, training.config_guard(cfg, model="vsml"))
    assert not training.same_guard({**old, "model": "vsml"}, training.config_guard(cfg, model="meta_rnn"))
    assert not training.same_guard(None, training.config_guard(cfg))


def test_a_run_resumes_when_only_another_chapters_section_changed():
    """The campaign's forward-cloning checkpoint must survive a default changed in Chapter 5's
    section; a change in its own section or in the seed still refuses it."""
    cfg = vl.get_config("paper")
    own = ("forward_cloning", "data")
    saved = training.config_guard(cfg)  # checkpoints made before sections counted kept everything
    other = cfg.override({"meta_learning.fashion_stats": "own"})
    assert training.same_guard(saved, training.config_guard(other, own))
    assert not training.same_guard(saved, training.config_guard(other))  # every section counts
    assert not training.same_guard(saved, training.config_guard(cfg.override({"forward_cloning.lr": 1e-4}), own))
    assert not training.same_guard(saved, training.config_guard(cfg.override({"seed": 1}), own))
    bad = {**saved, "forward_cloning": {**saved["forward_cloning"], "no_such_field": 1}}
    assert not training.same_guard(bad, training.config_guard(cfg, own))


def test_code_versions_are_described_in_the_order_they_ran_each_once():
    describe = vl.artifacts.describe_code_versions
    assert describe({"code_version": "a"}) == "code a"
    assert describe({"code_version": "c", "code_versions": ["a"]}) == "code a"
    many = describe({"code_version": "c", "code_versions": ["a", "b", "c"]})
    assert many.startswith("3 code versions") and "the first a, the last c" in many
    # Chapter 5's record keeps one list per model; a version two models share counts once
    per_model = {"code_version": "z", "code_versions": {"vsml": ["a", "b"], "rnn": ["b", "c"]}}
    assert vl.artifacts.code_versions(per_model) == ["a", "b", "c"]
    assert describe(per_model, labels={"vsml": "VSML"}) == (
        "code z wrote the record; “VSML” was trained by 2 code versions across its sessions, the first a, "
        "the last b (the record lists them all); “rnn” was trained by 2 code versions across its sessions, "
        "the first b, the last c (the record lists them all)")
    assert describe({"code_version": "z", "code_versions": {}}) == "code z wrote the record"


def test_run_outputs_leave_the_code_version_clean_and_code_changes_do_not(tmp_path):
    """A GPU window's second command runs over the first one's checkpoints (campaign/) on an
    older commit: its code is that commit's, and it must say so rather than refuse as dirty."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "vsml_lite").mkdir()
    (tmp_path / "campaign").mkdir()
    (tmp_path / "vsml_lite" / "__init__.py").write_text("x = 1\n")
    (tmp_path / "campaign" / "progress.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    describe = vl.artifacts._describe_checkout
    clean = describe(tmp_path)
    assert "+git." in clean and not clean.endswith("-dirty")
    (tmp_path / "campaign" / "progress.json").write_text('{"done": 5}\n')
    assert describe(tmp_path) == clean
    (tmp_path / "vsml_lite" / "__init__.py").write_text("x = 2\n")
    assert describe(tmp_path) == clean + "-dirty"
