"""The Chapter 4 experiment: clone, measure fidelity, meta-test the clones beside SGD
(Figures 5, 7-9), and the artifact that records it all.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..artifacts import code_version, live_path, load_artifact, load_checkpoint, save_artifact, save_checkpoint
from ..config import Config
from ..data import NUM_CLASSES, TensorData, check_datasets, downsample_dataset, load_dataset
from ..device import get_device, make_generator
from ..layer import LayerState
from ..network import SubLSTM
from .curriculum import CloneTrainResult, train_backprop_cloning
from .ground_truth import init_weights, mlp_forward, mlp_sgd_step
from .learner import (CLONE_LAYOUT, assert_no_autograd, learning_rate, make_learner, new_clone_lstm, predict,
                      state_from_weights, upgrade_clone_state)
from .probes import fidelity

#: Name of the artifact kind (``vsml_lite/pretrained/backprop_cloning_<preset>``).
KIND = "backprop_cloning"


#: Seconds between the snapshots a long meta-test run hands its ``snapshot`` callback (a paper-
#: scale deep run takes hours; a stop loses at most this much of it).
SNAPSHOT_SECONDS = 600.0


def learning_curves(lstm: SubLSTM, cfg: Config, train: TensorData, test: TensorData,
                    layer_sizes: Sequence[int], seeds: Sequence[int], progress: bool = True,
                    desc: str = "meta-test", resume: Optional[Dict[str, object]] = None,
                    snapshot: Optional[Callable[[Dict[str, object]], None]] = None,
                    snapshot_seconds: float = SNAPSHOT_SECONDS,
                    deadline: Optional[float] = None) -> Optional[Dict[str, object]]:
    """Run the cloned learner and plain SGD on the same network, data order and initial
    weights, one learner per seed (all seeds in one batched run).

    Both see ``test_steps`` batches of ``test_learner_batch`` examples (a seeded permutation of
    ``train`` per seed) and learn with rate :func:`learning_rate`. The clone runs under
    ``torch.no_grad`` with :func:`assert_no_autograd` checked every step; SGD uses autograd.

    A long run can stop and continue: ``snapshot`` is called with where the run stands (a dict
    of tensors: the learners' states, one copy each since Appendix D's averaging makes the
    copies equal, SGD's weights and the curves so far) every ``snapshot_seconds``, at the
    ``deadline`` (``time.monotonic()``; the run then returns ``None``) and on Ctrl-C or SIGTERM
    (then ``KeyboardInterrupt`` is raised after it). Called again with ``resume=`` that dict
    and the same arguments, the run continues bit for bit (tests).

    Returns:
        ``steps [T]``, ``eval_steps [P]`` and for ``clone`` and ``sgd``: ``train_loss [S, T]``
        (mean cross-entropy of each step's batch, before learning from it) and
        ``test_accuracy [S, P]`` (on the first ``eval_examples`` of ``test``) and
        ``final_accuracy [S]`` (after the last step, on the first :func:`final_test_images`);
        ``None`` when the deadline came first.
    """
    from tqdm.auto import tqdm

    from ..training import StopRequest

    p = cfg.backprop_cloning
    device = next(lstm.parameters()).device
    S, n, T = len(seeds), p.test_learner_batch, p.test_steps
    batch, weights = _seeded_runs(train, layer_sizes, seeds, n, device)
    learner = make_learner(lstm, cfg, layer_sizes)
    check_test_size(test, cfg)
    if resume is None:
        out = {"steps": list(range(1, T + 1)), "eval_steps": [],
               "clone": {"train_loss": torch.zeros(S, T), "test_accuracy": []},
               "sgd": {"train_loss": torch.zeros(S, T), "test_accuracy": []}}
        with torch.no_grad():
            state = state_from_weights(learner, weights, n, p.state_scale)
        sgd, first = weights, 0
    else:
        state, sgd, out, first = _resume_curves(resume, list(seeds), list(layer_sizes), n, T, device)

    def accuracy(examples):  # (clone, SGD) test accuracy [S] on the first ``examples`` of test
        xs, ys = test.images[:examples].to(device), test.labels[:examples].to(device)
        with torch.no_grad():
            acc_c = (predict(learner, state, xs, S).argmax(-1) == ys).float().mean(-1)
            _, logits = mlp_forward(sgd, xs.expand(S, -1, -1))
            acc_s = (logits.argmax(-1) == ys).float().mean(-1)
        return acc_c.cpu(), acc_s.cpu()

    def evaluate(step):
        out["eval_steps"].append(step)
        point = accuracy(p.eval_examples)
        for who, acc in zip(("clone", "sgd"), point):
            out[who]["test_accuracy"].append(acc)
        if step == T:
            examples = final_test_images(cfg)
            final = point if examples == p.eval_examples else accuracy(examples)
            for who, acc in zip(("clone", "sgd"), final):
                out[who]["final_accuracy"] = acc

    def where(done):
        # h[::n] is a view of all n copies' storage, which torch.save would write whole (on the
        # CPU, where .cpu() copies nothing): 195 MB instead of 6 for the cpu preset's shallow run.
        return {"step": done, "seeds": list(seeds), "layer_sizes": list(layer_sizes), "out": copy.deepcopy(out),
                "sgd": [(w.detach().cpu(), b.detach().cpu()) for w, b in sgd],
                "state": [{"h": s.h[::n].cpu().clone(), "c": s.c[::n].cpu().clone(), "fwd_in": s.fwd_in.cpu(),
                           "bwd_in": s.bwd_in.cpu()} for s in state]}

    if first == 0:
        evaluate(0)
    last = time.monotonic()
    with StopRequest() as stop:
        for t in tqdm(range(first, T), disable=not progress, desc=desc, initial=first, total=T):
            x, y = batch(t)
            with torch.no_grad():
                state, logits = learner.learn_step(state, x.reshape(S * n, -1), y.reshape(-1), S)
                assert_no_autograd(logits, *[s.c for s in state])
                out["clone"]["train_loss"][:, t] = nn.functional.cross_entropy(
                    logits, y.reshape(-1), reduction="none").reshape(S, n).mean(1).cpu()
            sgd, logits_s = mlp_sgd_step(sgd, x, y, learning_rate(cfg))
            out["sgd"]["train_loss"][:, t] = nn.functional.cross_entropy(
                logits_s.reshape(S * n, -1), y.reshape(-1), reduction="none").reshape(S, n).mean(1).detach().cpu()
            if (t + 1) % p.eval_every == 0 or t + 1 == T:
                evaluate(t + 1)
            out_of_time = deadline is not None and time.monotonic() >= deadline and t + 1 < T
            if snapshot is not None and t + 1 < T and (
                    stop.requested or out_of_time or time.monotonic() - last >= snapshot_seconds):
                snapshot(where(t + 1))
                last = time.monotonic()
            if stop.requested:
                raise KeyboardInterrupt(f"{desc} stopped at step {t + 1} of {T}"
                                        + ("; a snapshot was handed over to resume from" if snapshot else ""))
            if out_of_time:
                return None
    for k in ("clone", "sgd"):
        out[k]["test_accuracy"] = torch.stack(out[k]["test_accuracy"], dim=1)  # [S, P]
    return out


def final_test_images(cfg: Config) -> int:
    """How many test examples the accuracy after a run's last step is measured on:
    ``final_eval_examples``, or where that is 0, ``eval_examples`` (the curves' count)."""
    p = cfg.backprop_cloning
    return p.final_eval_examples or p.eval_examples


def check_test_size(test: TensorData, cfg: Config) -> None:
    """Refuse an evaluation that asks for more test examples than the split has (slicing
    would silently use fewer)."""
    p = cfg.backprop_cloning
    for name in ("eval_examples", "final_eval_examples"):
        if getattr(p, name) > len(test):
            raise ValueError(f"config backprop_cloning.{name}={getattr(p, name):,} is more than the "
                             f"{len(test):,} examples of the test split")


def _resume_curves(snap: Dict[str, object], seeds: List[int], layer_sizes: List[int], n: int, T: int, device):
    """``(state, sgd, out, first step)`` of a :func:`learning_curves` snapshot, checked against
    the run it is to continue."""
    if snap["seeds"] != seeds or snap["layer_sizes"] != layer_sizes or snap["out"]["clone"]["train_loss"].shape[1] != T:
        raise ValueError(f"the snapshot is of a run with seeds {snap['seeds']}, layers {snap['layer_sizes']} and "
                         f"{snap['out']['clone']['train_loss'].shape[1]} steps, not seeds {seeds}, layers "
                         f"{layer_sizes} and {T} steps")
    state = [LayerState(s["h"].repeat_interleave(n, 0).to(device), s["c"].repeat_interleave(n, 0).to(device),
                        s["fwd_in"].to(device), s["bwd_in"].to(device)) for s in snap["state"]]
    sgd = [(w.to(device), b.to(device)) for w, b in snap["sgd"]]
    return state, sgd, copy.deepcopy(snap["out"]), int(snap["step"])


def _seeded_runs(train: TensorData, layer_sizes: Sequence[int], seeds: Sequence[int], n: int, device):
    """What every run of seed ``s`` shares, learner or SGD: a permutation of ``train`` (seed
    ``s``) read ``n`` examples a step, and initial weights (seed ``10,000 + s``). Returns
    ``(batch, weights)``: ``batch(t)`` gives step ``t``'s ``(x [S, n, A], labels [S, n])``
    and ``weights`` is ``[S, A, B]`` per layer."""
    orders = [torch.randperm(len(train), generator=make_generator(s)) for s in seeds]
    weights = [init_weights(layer_sizes, 1, make_generator(10_000 + s), device) for s in seeds]
    weights = [(torch.cat([w[l][0] for w in weights]), torch.cat([w[l][1] for w in weights]))
               for l in range(len(layer_sizes) - 1)]  # [S, A, B] per layer

    def batch(t: int):
        idx = torch.stack([o[(t * n + torch.arange(n)) % len(train)] for o in orders])  # [S, n]
        return train.images[idx].to(device), train.labels[idx].to(device)

    return batch, weights


def sgd_accuracy(cfg: Config, train: TensorData, test: TensorData, layer_sizes: Sequence[int],
                 seeds: Sequence[int], lr: float) -> torch.Tensor:
    """Test accuracy ``[S]`` of plain SGD at rate ``lr`` after ``test_steps`` steps, on the
    data, batches and initial weights that :func:`learning_curves` gives the clone and SGD for
    the same seeds: what a perfect clone of SGD at that rate would reach. At
    ``lr = learning_rate(cfg)`` it is the SGD run's ``final_accuracy`` (on the first
    :func:`final_test_images` test examples)."""
    p = cfg.backprop_cloning
    check_test_size(test, cfg)
    device = train.images.device  # SGD runs where the data lives
    batch, weights = _seeded_runs(train, layer_sizes, seeds, p.test_learner_batch, device)
    for t in range(p.test_steps):
        weights, _ = mlp_sgd_step(weights, *batch(t), lr)
    examples = final_test_images(cfg)
    xs, ys = test.images[:examples].to(device), test.labels[:examples].to(device)
    with torch.no_grad():
        _, logits = mlp_forward(weights, xs.expand(len(seeds), -1, -1))
    return (logits.argmax(-1) == ys).float().mean(-1).cpu()


#: Test accuracies the paper reports for the cloned learner (Section 4, Figure 5).
PAPER_ACCURACY = {("mnist", "shallow"): 0.90, ("mnist", "deep"): 0.87,
                  ("fashion_mnist", "shallow"): 0.80, ("fashion_mnist", "deep"): 0.76}
#: The two clones: the full curriculum (Figures 5, 7, 8) and random data only (Figure 9).
CLONES = ("curriculum", "random")
#: The meta-test runs of the chapter: (clone, dataset, arrangement). The random-data clone is
#: run shallow only: Appendix B reports that random data suffices in the shallow setting.
EVALUATIONS = (("curriculum", "mnist", "shallow"), ("curriculum", "mnist", "deep"),
               ("curriculum", "fashion_mnist", "shallow"), ("curriculum", "fashion_mnist", "deep"),
               ("random", "mnist", "shallow"), ("random", "fashion_mnist", "shallow"))


#: The learners Chapter 4 meta-tests (:func:`arrangement`): one layer, and one hidden layer.
ARRANGEMENTS = ("shallow", "deep")


def arrangement(cfg: Config, name: str) -> List[int]:
    """Layer sizes of the ``shallow`` (A -> 10) or ``deep`` (A -> 32 -> 10) learner."""
    p = cfg.backprop_cloning
    A = p.input_side ** 2
    if name == "shallow":
        return [A, NUM_CLASSES]
    if name == "deep":
        return [A, p.deep_hidden, NUM_CLASSES]
    raise ValueError(f"unknown arrangement {name!r}; valid: {', '.join(ARRANGEMENTS)}")


def load_split(cfg: Config, name: str, train: bool) -> TensorData:
    """A dataset split downsampled to the preset's ``input_side``."""
    return downsample_dataset(load_dataset(name, train=train, root=cfg.data.root, download=cfg.data.download),
                              cfg.backprop_cloning.input_side)


def run_key(clone: str, dataset: str, arch: str) -> str:
    return f"{clone}/{dataset}/{arch}"


def evaluate_clones(cfg: Config, lstms: Dict[str, SubLSTM], cache: Union[str, Path, None] = None,
                    progress: bool = True, evaluations=EVALUATIONS,
                    deadline: Optional[float] = None) -> Dict[str, Dict]:
    """Fidelity and learning curves of every run in ``evaluations``.

    ``cache``: finished runs are saved there one by one, and a run in progress every
    :data:`SNAPSHOT_SECONDS`, at the deadline and on Ctrl-C / SIGTERM (:func:`learning_curves`),
    so an interrupted evaluation resumes where it stopped. ``deadline`` (``time.monotonic()``):
    the run in progress stops there (the result then lacks the runs not done). The shallow runs go first: a deep run costs about 3.4 times as much (its learner has
    that many more sub-LSTMs), so a session that ends part-way banks more finished runs.
    Returns ``{run_key: {"fidelity": {...}, "curves": {...}, "seconds": s, "code_version": v,
    "code_versions": [...]}}`` in the order of ``evaluations``: each run keeps how long it took,
    the code that finished it and every code that ran part of it, since the runs of one
    evaluation, and one run, may span several sessions. (Caches written before runs were timed
    lack the last three, and before runs resumed part-way the last one.)
    """
    p = cfg.backprop_cloning
    done = (load_checkpoint(cache) or {}) if cache is not None else {}
    if done and done.get("config") != cfg.to_dict():
        raise ValueError(f"evaluation cache {cache} was made with another config; delete it")
    done["config"] = cfg.to_dict()
    splits: Dict[Tuple[str, bool], TensorData] = {}
    for clone, dataset, arch in sorted(evaluations, key=lambda e: e[2] == "deep"):  # stable: shallow first
        key = run_key(clone, dataset, arch)
        if key in done:
            continue
        if deadline is not None and time.monotonic() >= deadline:
            break
        for train in (True, False):
            if (dataset, train) not in splits:
                splits[dataset, train] = load_split(cfg, dataset, train)
        sizes = arrangement(cfg, arch)
        lstm = lstms[clone]
        started = time.perf_counter()
        # a run stopped part-way in an earlier session continues from its snapshot
        part = done.pop("partial", None) if done.get("partial", {}).get("key") == key else None
        spent, versions = (part["seconds"], part["code_versions"]) if part else (0.0, [])
        versions = list(dict.fromkeys([*versions, code_version()]))
        fid = part["fidelity"] if part else fidelity(lstm, cfg, splits[dataset, False], sizes, seed=cfg.seed,
                                                     accumulate=p.fidelity_steps if arch == "shallow" else 0)

        def keep(where, key=key, fid=fid, spent=spent, versions=versions, started=started):
            done["partial"] = {"key": key, "snapshot": where, "fidelity": fid, "code_versions": versions,
                               "seconds": round(spent + time.perf_counter() - started, 1)}
            save_checkpoint(cache, done)

        curves = learning_curves(lstm, cfg, splits[dataset, True], splits[dataset, False], sizes,
                                 seeds=[cfg.seed + s for s in range(p.test_seeds)], progress=progress,
                                 desc=key, resume=part["snapshot"] if part else None,
                                 snapshot=keep if cache is not None else None, deadline=deadline)
        if curves is None:  # the deadline came part-way; keep() saved where the run stands
            break
        done.pop("partial", None)
        done[key] = {"fidelity": fid, "curves": curves, "seconds": round(spent + time.perf_counter() - started, 1),
                     "code_version": code_version(), "code_versions": versions}
        if cache is not None:
            save_checkpoint(cache, done)
    return {key: done[key] for key in (run_key(*e) for e in evaluations) if key in done}


#: Column order of :func:`accuracy_table` (JSON records sort keys; display in this order).
ACCURACY_COLUMNS = ("clone", "dataset", "arrangement", "steps", "clone accuracy", "SGD accuracy",
                    "paper (clone)", "seeds", "test images")


def final_accuracy(curves: Dict[str, object], who: str, cfg: Config) -> Tuple[torch.Tensor, int]:
    """``(accuracy [S], test images)`` of ``who`` (``"clone"`` or ``"sgd"``) after a run's
    last step: its ``final_accuracy`` on :func:`final_test_images` images, or for a run made
    before that was measured, the curve's last point (on ``eval_examples``)."""
    if "final_accuracy" in curves[who]:
        return curves[who]["final_accuracy"], final_test_images(cfg)
    return curves[who]["test_accuracy"][:, -1], cfg.backprop_cloning.eval_examples


def accuracy_table(results: Dict[str, Dict], cfg: Config) -> List[Dict[str, object]]:
    """Rows of the chapter's results table: final test accuracy of the clone and of SGD (mean
    ± std over seeds, :func:`final_accuracy`) beside the paper's number."""
    rows = []
    for key, r in results.items():
        clone, dataset, arch = key.split("/")
        (c, images), (s, _) = (final_accuracy(r["curves"], who, cfg) for who in ("clone", "sgd"))
        paper = PAPER_ACCURACY.get((dataset, arch)) if clone == "curriculum" else None
        rows.append({"clone": clone, "dataset": dataset, "arrangement": arch,
                     "steps": r["curves"]["steps"][-1],
                     "clone accuracy": f"{100 * c.mean():.1f} ± {100 * c.std():.1f}%",
                     "SGD accuracy": f"{100 * s.mean():.1f} ± {100 * s.std():.1f}%",
                     "paper (clone)": f"{100 * paper:.0f}%" if paper else "-",
                     "seeds": int(c.numel()), "test images": images})
    return rows


def final_summary(curves: Dict[str, object], cfg: Config) -> Dict[str, float]:
    """A record's ``metrics.final`` entry of one run: the seeds' mean accuracy of the clone and
    of SGD after the last step (:func:`final_accuracy`), on how many test images, and the
    curve's last point (on ``eval_examples``) beside it."""
    (c, images), (s, _) = (final_accuracy(curves, who, cfg) for who in ("clone", "sgd"))
    return {"clone_mean": c.mean().item(), "sgd_mean": s.mean().item(), "test_images": images,
            "curve_clone_mean": curves["clone"]["test_accuracy"][:, -1].mean().item(),
            "curve_sgd_mean": curves["sgd"]["test_accuracy"][:, -1].mean().item(),
            "curve_test_images": cfg.backprop_cloning.eval_examples}


def save_backprop_clone(path: Union[str, Path], cfg: Config, result: CloneTrainResult,
                        results: Dict[str, Dict], earlier: Optional[Dict[str, object]] = None) -> Path:
    """Save V_M of both clones, the learning curves (tensors) and a JSON record with the config,
    seed, cloning curves, fidelity and the accuracy table.

    The record's ``eval_seconds`` is the sum of the meta-test runs' own times (``eval_runs``
    keeps each run's seconds, the code that finished it and every code that ran part of it),
    and ``code_versions`` lists the code of the cloning (oldest first), then any other code
    that ran a meta-test run (in the runs' order). A run from a cache written before runs
    were timed has neither; ``eval_untimed`` names such runs, so the sum is not read as the whole.
    ``earlier``: a re-evaluated record's earlier meta-test (:func:`reevaluate_backprop_clone`),
    kept as ``metrics.earlier_evaluation``.
    """
    timed = {k: {"seconds": r["seconds"], "code_version": r["code_version"],
                 "code_versions": r.get("code_versions", [r["code_version"]])}
             for k, r in results.items() if "seconds" in r}
    curves = {}
    for key, r in results.items():
        c = r["curves"]
        curves[key] = {"steps": torch.tensor(c["steps"]), "eval_steps": torch.tensor(c["eval_steps"]),
                       **{f"{who}_{what}": c[who][what] for who in ("clone", "sgd")
                          for what in ("train_loss", "test_accuracy", "final_accuracy") if what in c[who]}}
    meta = {
        "kind": KIND, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
        "clone_layout": CLONE_LAYOUT,
        "metrics": {"accuracy": accuracy_table(results, cfg),
                    "final": {k: final_summary(r["curves"], cfg) for k, r in results.items()},
                    "fidelity": {k: r["fidelity"] for k, r in results.items()},
                    "train_seconds": round(result.seconds, 1),
                    "eval_seconds": round(sum(t["seconds"] for t in timed.values()), 1),
                    "eval_runs": timed, "eval_untimed": [k for k in results if k not in timed],
                    "device": str(get_device(cfg.device)),
                    **({"earlier_evaluation": earlier} if earlier is not None else {})},
        "curves": result.curves,
        "code_versions": list(dict.fromkeys([*result.code_versions,
                                             *(v for t in timed.values() for v in t["code_versions"])])),
    }
    tensors = {"lstm": {k: v.cpu() for k, v in result.lstm.state_dict().items()},
               "lstm_random": result.snapshots["local"], "learning_curves": curves}
    return save_artifact(path, tensors, meta)


def meta_test_time(metrics: Dict[str, object]) -> str:
    """How long a record's meta-test took, in words that do not overstate it: the sum of its
    runs' own times, naming runs that were not timed; a record from before runs were timed
    gives only the session that finished the meta-test (earlier sessions' cached runs not counted)."""
    seconds = f"{metrics['eval_seconds']:,} s"
    if "eval_runs" not in metrics:
        return f"{seconds} in the session that finished it"
    untimed = len(metrics.get("eval_untimed", []))
    return seconds + (f", not counting {untimed} run{'s' * (untimed > 1)} cached before runs were timed"
                      if untimed else "")


def train_and_save(cfg: Config, out: Union[str, Path, None] = None, progress: bool = True,
                   checkpoint: Union[str, Path, None] = None, deadline: Optional[float] = None) -> Optional[Path]:
    """Clone backprop resumably, evaluate both clones resumably, save the artifact; returns its
    path (default :func:`vsml_lite.artifacts.live_path`). Checkpoints (``checkpoint``, default
    ``<out>.ckpt``, and ``<out>.eval.ckpt``) are removed once the artifact is written. With a
    ``deadline`` (``time.monotonic()``) cloning or the meta-test (part-way through a run) may
    stop early, checkpointed: then nothing is written and ``None`` is returned."""
    check_datasets(("mnist", "fashion_mnist"), cfg.data.root, cfg.data.download)  # all a run needs, before it starts
    out = Path(out) if out is not None else live_path(KIND, cfg.preset)
    ckpt = Path(checkpoint) if checkpoint is not None else out.with_suffix(".ckpt")
    eval_ckpt = ckpt.with_suffix(".eval.ckpt")
    result = train_backprop_cloning(cfg, checkpoint=ckpt, progress=progress, deadline=deadline)
    if not result.finished:
        return None
    lstms = {"curriculum": result.lstm, "random": load_clone_state(cfg, result.snapshots["local"])}
    path = _evaluate_and_save(cfg, lstms, result, out, eval_ckpt, progress, deadline)
    if path is not None:
        ckpt.unlink(missing_ok=True)
    return path


def _evaluate_and_save(cfg: Config, lstms: Dict[str, SubLSTM], result: CloneTrainResult, out: Path,
                       eval_ckpt: Path, progress: bool, deadline: Optional[float],
                       earlier: Optional[Dict[str, object]] = None) -> Optional[Path]:
    """Meta-test both clones resumably (cache ``eval_ckpt``) and save the artifact, then drop
    the cache; ``None`` when the deadline came first (the evaluation resumes next time)."""
    device = get_device(cfg.device)
    results = evaluate_clones(cfg, {k: v.to(device) for k, v in lstms.items()}, cache=eval_ckpt,
                              progress=progress, deadline=deadline)
    if len(results) < len(EVALUATIONS):
        return None
    path = save_backprop_clone(out, cfg, result, results, earlier=earlier)
    eval_ckpt.unlink(missing_ok=True)
    return path


#: Settings a re-evaluation may change: the meta-test's, not the cloning's.
META_TEST_SETTINGS = ("test_learner_batch", "test_steps", "eval_every", "eval_examples", "final_eval_examples",
                      "test_seeds", "fidelity_steps")


def reevaluate_backprop_clone(path: Union[str, Path], out: Union[str, Path, None] = None,
                              changes: Optional[Dict[str, object]] = None, device: Optional[str] = None,
                              progress: bool = True, deadline: Optional[float] = None) -> Optional[Path]:
    """Meta-test the clones of the artifact at ``path`` again with today's evaluation code and
    write the artifact to ``out`` (default: ``path`` itself): the clones' V_M and cloning curves
    unchanged, new fidelity, learning curves and accuracy table. ``changes`` may set only
    :data:`META_TEST_SETTINGS` (keys without the ``backprop_cloning.`` prefix), e.g.
    ``{"final_eval_examples": 10_000}`` to measure a record made on 1,000 test images on the
    whole split. ``device``: where to run it (default: the record's ``device`` setting).

    The earlier evaluation is not lost: its accuracy table, final means, meta-test time and the
    record's code versions are kept in ``metrics.earlier_evaluation``. The record's
    ``code_versions`` are the earlier record's, then the new meta-test's code. Resumable like
    :func:`train_and_save` (``<out>.eval.ckpt``); returns ``None`` when the deadline came first.
    """
    changes = dict(changes or {})
    unknown = sorted(set(changes) - set(META_TEST_SETTINGS))
    if unknown:
        raise ValueError(f"a re-evaluation changes only the meta-test's settings {', '.join(META_TEST_SETTINGS)}; "
                         f"not {', '.join(unknown)}")
    path = Path(path)
    out = Path(out) if out is not None else path
    record = load_artifact(path)
    cfg, lstms = load_backprop_clone(record)
    cfg = cfg.override({**{f"backprop_cloning.{k}": v for k, v in changes.items()},
                        **({"device": device} if device is not None else {})})
    check_datasets(("mnist", "fashion_mnist"), cfg.data.root, cfg.data.download)
    meta = record.meta
    m = meta["metrics"]
    earlier = {"code_version": meta["code_version"], "code_versions": meta["code_versions"],
               "accuracy": m["accuracy"], "final": m["final"], "eval_seconds": m["eval_seconds"],
               "config": meta["config"]["backprop_cloning"]}
    trained = CloneTrainResult(lstm=lstms["curriculum"], curves=meta["curves"], seconds=m["train_seconds"],
                               snapshots={"local": lstms["random"].state_dict()},
                               code_versions=list(meta["code_versions"]))
    return _evaluate_and_save(cfg, lstms, trained, out, out.with_suffix(".eval.ckpt"), progress, deadline,
                              earlier=earlier)


def load_clone_state(cfg: Config, state_dict: Dict[str, torch.Tensor], layout: int = CLONE_LAYOUT) -> SubLSTM:
    """A :class:`SubLSTM` with the backprop cloning sizes of ``cfg`` holding ``state_dict``, made
    in message ``layout`` (:func:`upgrade_clone_state`)."""
    lstm = new_clone_lstm(cfg)
    lstm.load_state_dict(upgrade_clone_state(state_dict, layout))
    return lstm


def clone_layout(record) -> int:
    """The message layout an artifact's clones were made in: recorded since layout 2; records
    made before say nothing and are layout 1."""
    return int(record.meta.get("clone_layout", 1))


def load_backprop_clone(record) -> Tuple[Config, Dict[str, SubLSTM]]:
    """The config and both clones (``"curriculum"``, ``"random"``) of a loaded artifact, in
    today's message layout whatever layout they were made in."""
    cfg, layout = Config.from_dict(record.expect(KIND).meta["config"]), clone_layout(record)
    return cfg, {"curriculum": load_clone_state(cfg, record.tensors["lstm"], layout),
                 "random": load_clone_state(cfg, record.tensors["lstm_random"], layout)}
