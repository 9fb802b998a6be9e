"""Campaigns: the paper-scale runs, carried to completion over many short sessions.

No ``paper``-preset run fits one session here: GPU windows last about 15 minutes and the CPU
is two shared cores. A campaign works through :data:`RUNS` in order (forward cloning,
backprop cloning, meta-learning, the CMA-ES improvement), each resumed from its latest
checkpoint in the campaign folder (``campaign/`` in the repository, committed after every
session), and stops cleanly at a deadline. A run that completes writes its artifact,
``vsml_lite/pretrained/<kind>_paper``, which the chapters then show beside the smaller one.

Every session appends itself to ``progress.json`` in the folder: iterations done and total
per run, the rate on each kind of device, and the projected time left at that rate.

Example (``scripts/campaign.py`` is the command line)::

    python scripts/campaign.py --minutes 12 --device cuda            # a GPU window
    python scripts/campaign.py --minutes 240 --device cpu --threads 1 &   # the CPU, in the background
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch

from . import backprop as bp
from . import cloning, improve
from . import metalearn as ml
from .artifacts import (PRETRAINED_DIR, artifact_exists, code_version, describe_code_versions, load_artifact,
                        load_checkpoint)
from .config import Config
from .presets import get_config
from .device import get_device, use_free_cores

#: The campaign folder in the repository.
DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "campaign"
#: The preset whose runs a campaign carries, and the label of the artifacts it writes.
PRESET = "paper"
#: The benchmark records in the repository (``scripts/benchmark_gpu.py`` writes them).
BENCHMARK_DIRECTORY = Path(__file__).resolve().parent.parent / "benchmarks"
#: What a session reserves at the end of its window for the last checkpoint and the progress
#: file: a session asked for M minutes stops starting iterations this long before M.
RESERVE_SECONDS = 30.0


@dataclass(frozen=True)
class CampaignRun:
    """One run of the queue.

    Attributes:
        kind: the artifact kind (``<kind>_paper`` is written when the run completes).
        chapter: the book chapter that shows it.
        train_and_save: the kind's ``train_and_save(cfg, out, progress, checkpoint, deadline)``.
        total: iterations of the whole run at a config.
        checkpoints: the run's checkpoint files under a base path (``<dir>/<kind>_paper.ckpt``).
        needs: artifacts (``<kind>_<label>`` in ``vsml_lite/pretrained``) that must exist before
            the run can start.
        work: ``work(cfg, i, benchmark_ms)``, the work of a run's first ``i`` iterations at a
            config, in any unit, for the time left: rates are measured in it, so a run whose
            iterations differ in cost (Chapter 4's curriculum stages) is not timed by its
            cheapest stage. ``benchmark_ms`` is the device's latest benchmark (ms per
            iteration by case, :func:`benchmark_ms`; ``{}`` when there is none), which may say
            how the costs compare on that device. Default: ``i``.
        work_basis: how ``work`` weighs the iterations, in words ("" for the default).
    """

    kind: str
    chapter: int
    train_and_save: Callable[..., Optional[Path]]
    total: Callable[[Config], int]
    checkpoints: Callable[[Path], List[Path]]
    needs: Callable[[Config], Sequence[str]] = lambda cfg: ()
    work: Callable[[Config, int, Dict[str, float]], float] = lambda cfg, i, benchmark_ms: i
    work_basis: str = ""


def _one(base: Path) -> List[Path]:
    return [base]


def _per_model(base: Path) -> List[Path]:
    return [base.with_suffix(f".{model}.ckpt") for model in ml.MODELS]


#: The queue, in the order a campaign works through it.
RUNS = (
    CampaignRun(cloning.KIND, 3, cloning.train_and_save, lambda c: c.forward_cloning.iterations, _one),
    CampaignRun(bp.KIND, 4, bp.train_and_save, lambda c: sum(n for _, n in bp.stage_schedule(c)), _one,
                work=bp.work_done,
                work_basis="each curriculum stage weighted by what an iteration of it cost in the device's "
                           "latest benchmark in `benchmarks/`, or by its sub-LSTMs per iteration where none "
                           "timed it: an estimate until the stage has run"),
    CampaignRun(ml.KIND, 5, ml.train_and_save, lambda c: c.meta_learning.iterations * len(ml.MODELS), _per_model),
    CampaignRun(improve.KIND, 6, improve.train_and_save, lambda c: c.improve.generations, _one,
                needs=lambda c: (f"{bp.KIND}_{c.improve.source_artifact}",)),
)
KINDS = tuple(r.kind for r in RUNS)


def run_for(kind: str) -> CampaignRun:
    """The :class:`CampaignRun` of ``kind``; unknown kinds raise ``ValueError`` listing the valid ones."""
    for r in RUNS:
        if r.kind == kind:
            return r
    raise ValueError(f"unknown campaign run {kind!r}; valid: {', '.join(KINDS)}")


def status(run: CampaignRun, cfg: Config, directory: Path, out_dir: Path) -> Dict[str, Any]:
    """Where ``run`` stands: ``{"kind", "done", "total", "state", "checkpoint_mb", "artifact"}``.
    ``state`` is ``finished`` (its artifact exists), ``waiting`` (a needed artifact is
    missing), ``evaluating`` (trained, its artifact not written yet), ``running`` (a
    checkpoint exists) or ``pending``."""
    total = run.total(cfg)
    artifact = out_dir / f"{run.kind}_{cfg.preset}"
    files = [f for f in run.checkpoints(directory / f"{run.kind}_{cfg.preset}.ckpt") if f.exists()]
    every = list(directory.glob(f"{run.kind}_{cfg.preset}.*ckpt"))  # with evaluation caches
    out = {"kind": run.kind, "chapter": run.chapter, "total": total, "artifact": None,
           "checkpoint_mb": round(sum(f.stat().st_size for f in every) / 2 ** 20, 2)}
    if artifact_exists(artifact):
        return {**out, "done": total, "state": "finished", "artifact": str(artifact.name)}
    done = sum(int(load_checkpoint(f)["iteration"]) for f in files)
    missing = [n for n in run.needs(cfg) if not artifact_exists(PRETRAINED_DIR / n)]
    state = "waiting" if missing else "evaluating" if done >= total else "running" if files else "pending"
    return {**out, "done": done, "state": state, **({"waiting_for": missing} if missing else {})}


def run_campaign(minutes: float, device: str = "auto", threads: Optional[int] = None,
                 directory: Union[str, Path] = DEFAULT_DIRECTORY, out_dir: Union[str, Path] = PRETRAINED_DIR,
                 kinds: Optional[Sequence[str]] = None, overrides: Optional[Dict[str, Any]] = None,
                 preset: str = PRESET, progress: bool = True) -> Dict[str, Any]:
    """Advance the campaign for at most ``minutes`` and return its progress record (also
    written to ``<directory>/progress.json``).

    Args:
        minutes: the session's window; iterations stop :data:`RESERVE_SECONDS` before it ends.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        threads: torch's intra-op threads (``1`` for a background run beside other work).
        directory: the campaign folder (checkpoints and ``progress.json``).
        out_dir: where finished runs write their artifacts.
        kinds: the runs to advance, in queue order (default all of :data:`RUNS`).
        overrides: config changes (``{"section.field": value}``), e.g. for a smoke campaign.
        preset: the preset the runs use (``paper``; ``smoke`` in tests).
        progress: progress bars.

    A run stopped by the deadline keeps its checkpoint and the session ends there; a run that
    completes writes its artifact, removes its checkpoints, and the next run starts.
    """
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    elif get_device(device).type == "cpu":
        use_free_cores()
    started_wall, started = _now(), time.monotonic()
    deadline = started + max(minutes * 60 - RESERVE_SECONDS, 0.0)
    directory, out_dir = Path(directory), Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    runs = [run_for(k) for k in (kinds or KINDS)]
    with _exclusive(directory), _sigterm_interrupts():
        return _advance(runs, minutes, started_wall, started, deadline, device, directory, out_dir, overrides,
                        preset, progress)


def _advance(runs, minutes, started_wall, started, deadline, device, directory, out_dir, overrides, preset,
             progress) -> Dict[str, Any]:
    cfg = get_config(preset).override({"device": device, **(overrides or {})})
    dev = str(get_device(device).type)
    before = {r.kind: status(r, cfg, directory, out_dir) for r in runs}
    seconds: Dict[str, float] = {}
    note = "window used"
    try:
        for r in runs:
            st = status(r, cfg, directory, out_dir)
            if st["state"] in ("finished", "waiting") or (st["total"] == 0):
                continue
            if time.monotonic() >= deadline:
                break
            began = time.monotonic()
            try:
                path = r.train_and_save(cfg, out_dir / f"{r.kind}_{cfg.preset}", progress,
                                        checkpoint=directory / f"{r.kind}_{cfg.preset}.ckpt", deadline=deadline)
            finally:  # a run stopped by Ctrl-C / SIGTERM ran too: its checkpointed iterations took this long
                seconds[r.kind] = time.monotonic() - began
            if path is None:
                break  # the deadline came first
        else:
            note = "queue done"
    except KeyboardInterrupt:
        note = "interrupted"
        raise
    finally:
        session = {"started": started_wall, "minutes_asked": minutes, "device": dev,
                   "threads": torch.get_num_threads(), "code_version": code_version(), "preset": cfg.preset,
                   "seconds": round(time.monotonic() - started, 1), "ended": note, "runs": {}}
        for r in runs:
            now = status(r, cfg, directory, out_dir)
            ran = now["done"] - before[r.kind]["done"]
            if ran > 0 or r.kind in seconds:
                session["runs"][r.kind] = {"from": before[r.kind]["done"], "iterations": ran,
                                           "seconds": round(seconds.get(r.kind, 0.0), 1)}
        record = _write_progress(directory, cfg, session, [status(r, cfg, directory, out_dir) for r in RUNS])
    return record


@contextlib.contextmanager
def _sigterm_interrupts():
    """For the session, SIGTERM stops the campaign as Ctrl-C does, so ``progress.json`` records
    the session either way. Inside a run's training loop :class:`~vsml_lite.training.StopRequest`
    takes both signals and checkpoints first; outside it (a run's evaluation phase, whose
    finished parts its evaluation cache keeps, or between runs) Python's default for SIGTERM
    would end the process on the spot, before the record is written."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _exclusive(directory: Path):
    """Hold ``<directory>/.lock`` for the session: two campaigns in one folder would advance the
    same runs and overwrite each other's checkpoints."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(directory / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another campaign is running in {directory}; wait for it or stop it") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def benchmark_ms(preset: str, device_type: str, directory: Optional[Path] = None) -> Dict[str, float]:
    """The fastest ms per iteration of each case in the latest benchmark record of ``preset``
    on a device of ``device_type`` (``"cuda"``, ``"cpu"``) in ``directory`` (default
    :data:`BENCHMARK_DIRECTORY`); ``{}`` when there is none."""
    records = []
    for path in sorted(Path(directory or BENCHMARK_DIRECTORY).glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if rec.get("preset") == preset and rec.get("device_type") == device_type and "cases" in rec:
            records.append(rec)
    if not records:
        return {}
    ms: Dict[str, float] = {}
    for case in max(records, key=lambda r: r.get("when", ""))["cases"]:
        if "ms_per_iteration" in case:
            ms[case["case"]] = min(ms.get(case["case"], math.inf), case["ms_per_iteration"])
    return ms


def _estimate(cfg: Config, sessions: List[Dict[str, Any]], run: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
    """``{"rate_per_second": {device: it/s}, "hours_left": {device: h}}`` of one run of a
    progress record (``run``: its ``kind``, ``total`` and ``done``) from the sessions so far.

    A session's iterations of a run start where the run stood (``from``; sessions recorded
    before it was kept continue where the previous one ended). The time left is the work left
    (:attr:`CampaignRun.work`, weighed as the device's latest benchmark says, :func:`benchmark_ms`)
    at the work per second the sessions on a device managed."""
    work = run_for(run["kind"]).work
    rates, at, bench = {}, 0, {}
    for s in sessions:
        ran = s["runs"].get(run["kind"])
        if s.get("preset") != cfg.preset or not ran:
            continue
        start = ran.get("from", at)
        at = start + ran["iterations"]
        if ran["iterations"] > 0 and ran["seconds"] > 0:
            d = s["device"]
            if d not in bench:
                bench[d] = benchmark_ms(cfg.preset, d)
            it, units, sec = rates.get(d, (0, 0.0, 0.0))
            rates[d] = (it + ran["iterations"], units + work(cfg, at, bench[d]) - work(cfg, start, bench[d]),
                        sec + ran["seconds"])
    left = {d: work(cfg, run["total"], bench[d]) - work(cfg, run["done"], bench[d]) for d in rates}
    return {"rate_per_second": {d: round(it / sec, 3) for d, (it, _, sec) in rates.items()},
            "hours_left": {d: round(left[d] / (units / sec) / 3600, 1) for d, (_, units, sec) in rates.items()}}


def _write_progress(directory: Path, cfg: Config, session: Dict[str, Any], runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Append ``session`` to ``progress.json`` and recompute rates and ETAs from all sessions
    (:func:`_estimate`)."""
    path = directory / "progress.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    sessions = old.get("sessions", []) + [session]
    for r in runs:
        r["percent"] = round(100 * r["done"] / r["total"], 2) if r["total"] else 100.0
        r.update(_estimate(cfg, sessions, r))
    record = {"preset": cfg.preset, "updated": _now(), "runs": runs, "sessions": sessions}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)
    return record


def refreshed(record: Dict[str, Any]) -> Dict[str, Any]:
    """A progress record with its runs' rates and hours left as this code estimates them
    (:func:`_estimate`), not as the code of the record's last session did."""
    cfg = get_config(record["preset"])
    return {**record, "runs": [{**r, **_estimate(cfg, record["sessions"], r)} for r in record["runs"]]}


def progress_table(record: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per run of a progress record, for printing."""
    rows = []
    for r in record["runs"]:
        rows.append({"run": r["kind"], "chapter": r["chapter"], "state": r["state"],
                     "done": f"{r['done']:,} / {r['total']:,}", "percent": r["percent"],
                     "it/s": ", ".join(f"{d}: {v:g}" for d, v in r["rate_per_second"].items()) or "-",
                     "hours left": ", ".join(f"{d}: {v:g}" for d, v in r["hours_left"].items()) or "-",
                     "checkpoint MB": r["checkpoint_mb"]})
    return rows


def paper_scale(kind: str, out_dir: Union[str, Path] = PRETRAINED_DIR,
                directory: Union[str, Path] = DEFAULT_DIRECTORY) -> Dict[str, Any]:
    """What a chapter shows of its paper-scale run: ``{"note", "rows", "claims"}``.

    When the campaign has written ``<kind>_paper``: ``note`` says its scale and what made it,
    ``rows`` is the chapter's results table from its record (the same columns as the smaller
    run's) and ``claims`` the paper's claims judged on it (Chapters 5 and 6), else ``None``.
    Otherwise ``note`` says where the campaign stands (``campaign/progress.json``) and ``rows``
    and ``claims`` are ``None``.
    """
    run_for(kind)  # unknown kinds are an error
    path = Path(out_dir) / f"{kind}_{PRESET}"
    if not artifact_exists(path):
        return {"note": _campaign_note(kind, Path(directory)), "rows": None, "claims": None}

    meta = load_artifact(path).meta
    m = meta["metrics"]
    rows, claims = None, None
    if kind == cloning.KIND:
        rows = [{"sub-LSTM": f"{name}, paper scale", "mean |error|": m[name]["mean_abs_error"],
                 "max |error|": m[name]["max_abs_error"], "mean |target|": m[name]["mean_abs_target"],
                 "grid points": m[name]["grid_points"]} for name in ("untrained", "trained")]
    elif kind == bp.KIND:
        rows = [{c: r[c] for c in bp.ACCURACY_COLUMNS} for r in m["accuracy"]]
    elif kind == ml.KIND:
        rows, claims = ml.public_rows(m["results"]), m["claims"]
    elif kind == improve.KIND:
        rows, claims = improve.public_rows(m["results"]), m["claims"]
    code = describe_code_versions(meta)
    hours = f" in {m['train_seconds'] / 3600:,.1f} h of training" if "train_seconds" in m else ""
    note = (f"At the paper's scale (preset `{meta['preset']}`, seed {meta['seed']}), made by the campaign on "
            f"{m.get('device', 'the recorded device')}{hours} with {code}:")
    return {"note": note, "rows": rows, "claims": claims}


def _campaign_note(kind: str, directory: Path) -> str:
    path = directory / "progress.json"
    if not path.exists():
        return ("No paper-scale run of this chapter has finished yet; `scripts/campaign.py` carries it "
                "(its progress is kept in the repository's `campaign/progress.json`).")
    record = json.loads(path.read_text())
    r = next((r for r in record["runs"] if r["kind"] == kind), None)
    if r is None:
        return "No paper-scale run of this chapter has started yet (`scripts/campaign.py`)."
    r = {**r, **_estimate(get_config(record["preset"]), record["sessions"], r)}  # as this code estimates it
    left = ", ".join(f"{v:,g} h on {d}" for d, v in r["hours_left"].items())
    basis = run_for(kind).work_basis
    return (f"No paper-scale run of this chapter has finished yet: the campaign (`scripts/campaign.py`) "
            f"had done {r['done']:,} of {r['total']:,} iterations ({r['percent']:g}%) on {record['updated'][:10]}"
            + (f"; at the rates measured so far about {left} remain" + (f" ({basis})." if basis else ".")
               if left else ".")
            + " Every number in this chapter is from the smaller run.")


def paper_scale_markdown(kind: str, float_format: str = ".3g", **where) -> str:
    """:func:`paper_scale` as Markdown for a chapter: the note, then the results table and the
    claims table when the paper-scale run has finished."""
    from .viz import markdown_table

    shown = paper_scale(kind, **where)
    parts = [shown["note"]]
    if shown["rows"]:
        parts.append(markdown_table(shown["rows"], float_format))
    if shown["claims"]:
        parts.append(markdown_table(shown["claims"]))
    return "\n\n".join(parts)
