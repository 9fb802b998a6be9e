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


def test_the_time_left_weighs_the_curriculum_stages_by_their_work(tmp_path, monkeypatch):
    """Chapter 4's stages differ in cost per iteration (stage ``local`` has 1-to-1 learners,
    ``deep_own`` MNIST networks); the time left is the work left at the work rate measured,
    not the iterations left at the rate of the stage that ran."""
    from vsml_lite import backprop as bp

    monkeypatch.setattr(campaign, "BENCHMARK_DIRECTORY", tmp_path / "no-benchmarks")  # sub-LSTM steps only
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
    # More than the iterations left at local's rate: the paper preset's 10,000 network-stage
    # iterations weigh as about 290,000 of local's (15 and 50 times its sub-LSTM steps).
    assert expected > 1.2 * (total - 2000) / 2.0 / 3600
    note = campaign._campaign_note("backprop_cloning", tmp_path)
    assert f"{round(expected, 1):,g} h on cpu" in note and "sub-LSTMs per iteration" in note


def test_the_time_left_weighs_the_stages_as_the_devices_benchmark_timed_them(tmp_path, monkeypatch):
    """On a GPU stage ``local`` runs 32,768 sub-LSTMs in one batch and a network stage runs
    hundreds of small kernels per iteration, so sub-LSTM steps say little about what a stage
    costs there: the H200's benchmark timed ``shallow`` at 118x ``local`` per iteration where
    the sub-LSTM steps say 15x. The latest benchmark of the device and preset weighs the
    stages it timed; the others scale by sub-LSTM steps from the costliest network stage timed."""
    from vsml_lite import backprop as bp

    bench = tmp_path / "benchmarks"
    bench.mkdir()
    monkeypatch.setattr(campaign, "BENCHMARK_DIRECTORY", bench)

    def record(name, when, device_type, shallow_ms, preset="paper"):
        cases = [{"case": "backprop_local", "mode": "eager", "ms_per_iteration": 20.0},
                 {"case": "backprop_local", "mode": "auto", "ms_per_iteration": 4.0},
                 {"case": "backprop_shallow", "mode": "eager", "ms_per_iteration": shallow_ms},
                 {"case": "backprop_deep", "mode": "eager", "skipped": "out of the benchmark's budget"}]
        (bench / name).write_text(json.dumps({"preset": preset, "device_type": device_type, "when": when,
                                              "cases": cases}))

    record("gpu-old.json", "2026-01-01 00:00:00 UTC", "cuda", 999.0)
    record("gpu-new.json", "2026-12-01 00:29:05 UTC", "cuda", 400.0)  # the latest counts
    record("gpu-smoke.json", "2026-12-02 00:00:00 UTC", "cuda", 1.0, preset="smoke")  # another preset
    assert campaign.benchmark_ms("paper", "cuda") == {"backprop_local": 4.0, "backprop_shallow": 400.0}
    assert campaign.benchmark_ms("paper", "cpu") == {}

    cfg = vl.get_config("paper")
    cost = bp.stage_costs(cfg, campaign.benchmark_ms("paper", "cuda"))
    work = {s: bp.iteration_work(cfg, s) for s in bp.STAGES}
    assert (cost["local"], cost["shallow"]) == (4.0, 400.0)
    assert cost["deep_own"] == pytest.approx(400.0 * work["deep_own"] / work["shallow"])
    total = campaign.run_for("backprop_cloning").total(cfg)
    its = dict(bp.stage_schedule(cfg))
    session = {"preset": "paper", "device": "cuda",
               "runs": {"backprop_cloning": {"from": 0, "iterations": 50_000, "seconds": 250}}}  # 5 ms/it
    run = campaign._write_progress(tmp_path, cfg, session, [{"kind": "backprop_cloning", "total": total,
                                                             "done": 50_000}])["runs"][0]
    # 5 ms of wall time per 4 ms the benchmark timed: every stage is 1.25x its benchmark
    seconds = 1.25 * ((its["local"] - 50_000) * 4.0 + its["shallow"] * 400.0
                      + (its["deep_gt"] + its["deep_own"]) * cost["deep_own"]) / 1000
    assert run["hours_left"]["cuda"] == pytest.approx(seconds / 3600, abs=0.1)
    # not local's rate for all: the 10,000 network-stage iterations weigh as about 1.9 million of local's
    assert run["hours_left"]["cuda"] > 2 * (total - 50_000) / 200.0 / 3600
