"""Campaigns: sessions continue one another exactly, one campaign per folder, and the queue
waits for what a run needs."""

import json

import pytest
import torch

import vsml_lite as vl
from vsml_lite import campaign, cloning


def test_two_short_sessions_continue_one_another_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "RESERVE_SECONDS", 0.0)
    directory, out = tmp_path / "campaign", tmp_path / "artifacts"
    args = dict(device="cpu", directory=directory, out_dir=out, kinds=["forward_cloning"], preset="smoke",
                progress=False)
    first = campaign.run_campaign(0.2 / 60, **args)  # a 0.2 s window: part of the 300 iterations
    run = first["runs"][0]
    assert run["kind"] == "forward_cloning" and run["state"] == "running" and 0 < run["done"] < 300
    assert (directory / "forward_cloning_smoke.ckpt").exists() and not list(out.glob("*.json"))

    second = campaign.run_campaign(30, **args)
    run = second["runs"][0]
    assert run["state"] == "finished" and run["done"] == run["total"] == 300
    assert not (directory / "forward_cloning_smoke.ckpt").exists()
    assert [s["runs"]["forward_cloning"]["iterations"] for s in second["sessions"]] == [first["runs"][0]["done"],
                                                                                       300 - first["runs"][0]["done"]]
    assert run["rate_per_second"]["cpu"] > 0

    record = vl.load_artifact(out / "forward_cloning_smoke")
    straight = cloning.train_forward_cloning(vl.get_config("smoke").override({"device": "cpu"}), progress=False)
    for k, v in straight.lstm.state_dict().items():
        torch.testing.assert_close(record.tensors["lstm"][k], v, rtol=0, atol=0, msg=k)
    assert record.meta["curves"]["loss"] == pytest.approx(straight.losses)
    assert record.meta["code_versions"] == [vl.artifacts.code_version()]
    assert json.loads((directory / "progress.json").read_text())["runs"][0]["state"] == "finished"


def test_one_campaign_per_folder(tmp_path):
    with campaign._exclusive(tmp_path):
        with pytest.raises(RuntimeError, match="another campaign is running"):
            campaign.run_campaign(1, device="cpu", directory=tmp_path, out_dir=tmp_path, preset="smoke",
                                  progress=False)


def test_the_improvement_waits_for_its_clone(tmp_path):
    cfg = vl.get_config("paper")
    run = campaign.run_for("improve_backprop")
    st = campaign.status(run, cfg, tmp_path, tmp_path)
    expected = "finished" if vl.artifact_exists(vl.pretrained_path("improve_backprop", "paper")) else "waiting"
    if not vl.artifact_exists(vl.pretrained_path("backprop_cloning", "paper")):
        assert st["state"] == expected and st["waiting_for"] == ["backprop_cloning_paper"]
    with pytest.raises(ValueError, match="unknown campaign run 'cma'; valid: forward_cloning"):
        campaign.run_for("cma")
    with pytest.raises(ValueError, match="minutes must be positive"):
        campaign.run_campaign(0, preset="smoke", directory=tmp_path)


def test_chapters_get_the_paper_scale_result_or_where_the_campaign_stands(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "RESERVE_SECONDS", 0.0)
    out, directory = tmp_path / "artifacts", tmp_path / "campaign"
    shown = campaign.paper_scale("forward_cloning", out, directory)
    assert shown["rows"] is None and "campaign/progress.json" in shown["note"]
    campaign.run_campaign(0.2 / 60, device="cpu", directory=directory, out_dir=out, kinds=["forward_cloning"],
                          preset="smoke", progress=False)
    shown = campaign.paper_scale("forward_cloning", out, directory)
    assert shown["rows"] is None and "of 300 iterations" in shown["note"]
    # A finished run: the record's numbers, in the chapter's columns.
    path = cloning.train_and_save(vl.get_config("smoke").override({"device": "cpu"}), out / "forward_cloning_paper",
                                  progress=False)
    shown = campaign.paper_scale("forward_cloning", out, directory)
    meta = vl.load_artifact(path).meta
    assert shown["rows"][1]["mean |error|"] == meta["metrics"]["trained"]["mean_abs_error"]
    assert shown["note"].startswith("At the paper's scale") and shown["claims"] is None


def test_a_stopped_session_records_its_time_and_rate(tmp_path, interrupt_on_call):
    """SIGTERM / Ctrl-C stop a campaign with a checkpoint; the session's iterations and seconds
    still go into progress.json, so the rate counts them."""
    directory = tmp_path / "campaign"
    interrupt_on_call(cloning.ForwardCloningTask, "step", 40)
    with pytest.raises(KeyboardInterrupt):
        campaign.run_campaign(30, device="cpu", directory=directory, out_dir=tmp_path / "artifacts",
                              kinds=["forward_cloning"], preset="smoke", progress=False)
    record = json.loads((directory / "progress.json").read_text())
    session = record["sessions"][-1]
    assert session["ended"] == "interrupted"
    ran = session["runs"]["forward_cloning"]
    assert ran["iterations"] > 0 and ran["seconds"] > 0
    assert record["runs"][0]["rate_per_second"]["cpu"] > 0


def test_sigterm_during_an_evaluation_still_records_the_session(tmp_path):
    """Outside a training loop (here: backprop cloning's meta-test) SIGTERM used to end the
    process at once, before progress.json recorded the session. A child process, so that the
    old behaviour fails the test instead of killing pytest."""
    import subprocess
    import sys

    directory, out = tmp_path / "campaign", tmp_path / "artifacts"
    child = f"""
import os, signal, sys
from vsml_lite import campaign
from vsml_lite.backprop import experiment
real = experiment.learning_curves
def terminated(*args, **kw):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kw)
experiment.learning_curves = terminated
try:
    campaign.run_campaign(30, device="cpu", directory={str(directory)!r}, out_dir={str(out)!r},
                          kinds=["backprop_cloning"], preset="smoke", progress=False)
except KeyboardInterrupt:
    sys.exit(130)
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert done.returncode == 130, done.stderr[-2000:]
    record = json.loads((directory / "progress.json").read_text())
    assert record["sessions"][-1]["ended"] == "interrupted"
    run = next(r for r in record["runs"] if r["kind"] == "backprop_cloning")
    assert run["state"] == "evaluating" and not list(out.glob("*.json"))


def test_the_time_left_weighs_the_curriculum_stages_by_their_work(tmp_path):
    """Chapter 4's stages differ in cost per iteration (stage ``local`` has 1-to-1 learners,
    ``deep_own`` MNIST networks); the time left is the work left at the work rate measured,
    not the iterations left at the rate of the stage that ran."""
    from vsml_lite import backprop as bp

    cfg = vl.get_config("paper")
    local = cfg.backprop_cloning.local_iterations
    assert bp.work_done(cfg, 10) == 10 * bp.iteration_work(cfg, "local")
    assert (bp.work_done(cfg, local + 3) - bp.work_done(cfg, local)) == 3 * bp.iteration_work(cfg, "shallow")
    assert bp.iteration_work(cfg, "deep_own") > 40 * bp.iteration_work(cfg, "local")  # 784 x 32 + 32 x 10 per copy
    total = campaign.run_for("backprop_cloning").total(cfg)
    runs = [{"kind": "backprop_cloning", "total": total, "done": 2000}]
    # two sessions of stage local, the first recorded before sessions kept where they started
    sessions = [{"preset": "paper", "device": "cpu", "runs": {"backprop_cloning": {"iterations": 1000, "seconds": 500}}}]
    (tmp_path / "progress.json").write_text(json.dumps({"sessions": sessions}))
    session = {"preset": "paper", "device": "cpu",
               "runs": {"backprop_cloning": {"from": 1000, "iterations": 1000, "seconds": 500}}}
    run = campaign._write_progress(tmp_path, cfg, session, runs)["runs"][0]
    assert run["rate_per_second"]["cpu"] == 2.0
    work_per_second = 2 * bp.iteration_work(cfg, "local")
    expected = (bp.work_done(cfg, total) - bp.work_done(cfg, 2000)) / work_per_second / 3600
    assert run["hours_left"]["cpu"] == pytest.approx(expected, abs=0.1)
    assert expected > 15 * (total - 2000) / 2.0 / 3600  # far more than the iterations left at local's rate
    note = campaign._campaign_note("backprop_cloning", tmp_path)
    assert f"{round(expected, 1):,g} h on cpu" in note and "sub-LSTMs per iteration" in note
