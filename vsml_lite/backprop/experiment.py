"""The Chapter 4 experiment: clone, measure fidelity, meta-test the clones beside SGD
(Figures 5, 7-9), and the artifact that records it all.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..artifacts import code_version, live_path, load_checkpoint, save_artifact, save_checkpoint
from ..config import Config
from ..data import NUM_CLASSES, TensorData, check_datasets, downsample_dataset, load_dataset
from ..device import get_device, make_generator
from ..network import SubLSTM
from .curriculum import CloneTrainResult, train_backprop_cloning
from .ground_truth import init_weights, mlp_forward, mlp_sgd_step
from .learner import (CLONE_LAYOUT, assert_no_autograd, learning_rate, make_learner, new_clone_lstm, predict,
                      state_from_weights, upgrade_clone_state)
from .probes import fidelity

#: Name of the artifact kind (``vsml_lite/pretrained/backprop_cloning_<preset>``).
KIND = "backprop_cloning"


def learning_curves(lstm: SubLSTM, cfg: Config, train: TensorData, test: TensorData,
                    layer_sizes: Sequence[int], seeds: Sequence[int], progress: bool = True,
                    desc: str = "meta-test") -> Dict[str, object]:
    """Run the cloned learner and plain SGD on the same network, data order and initial
    weights, one learner per seed (all seeds in one batched run).

    Both see ``test_steps`` batches of ``test_learner_batch`` examples (a seeded permutation of
    ``train`` per seed) and learn with rate :func:`learning_rate`. The clone runs under
    ``torch.no_grad`` with :func:`assert_no_autograd` checked every step; SGD uses autograd.

    Returns:
        ``steps [T]``, ``eval_steps [P]`` and for ``clone`` and ``sgd``: ``train_loss [S, T]``
        (mean cross-entropy of each step's batch, before learning from it) and
        ``test_accuracy [S, P]`` (on the first ``eval_examples`` of ``test``).
    """
    from tqdm.auto import tqdm

    p = cfg.backprop_cloning
    device = next(lstm.parameters()).device
    S, n, T = len(seeds), p.test_learner_batch, p.test_steps
    batch, weights = _seeded_runs(train, layer_sizes, seeds, n, device)
    learner = make_learner(lstm, cfg, layer_sizes)
    xs_test = test.images[:p.eval_examples].to(device)
    ys_test = test.labels[:p.eval_examples].to(device)
    out = {"steps": list(range(1, T + 1)), "eval_steps": [],
           "clone": {"train_loss": torch.zeros(S, T), "test_accuracy": []},
           "sgd": {"train_loss": torch.zeros(S, T), "test_accuracy": []}}
    with torch.no_grad():
        state = state_from_weights(learner, weights, n, p.state_scale)
    sgd = weights

    def evaluate(step):
        out["eval_steps"].append(step)
        with torch.no_grad():
            acc_c = (predict(learner, state, xs_test, S).argmax(-1) == ys_test).float().mean(-1)
            _, logits = mlp_forward(sgd, xs_test.expand(S, -1, -1))
            acc_s = (logits.argmax(-1) == ys_test).float().mean(-1)
        out["clone"]["test_accuracy"].append(acc_c.cpu())
        out["sgd"]["test_accuracy"].append(acc_s.cpu())

    evaluate(0)
    for t in tqdm(range(T), disable=not progress, desc=desc):
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
    for k in ("clone", "sgd"):
        out[k]["test_accuracy"] = torch.stack(out[k]["test_accuracy"], dim=1)  # [S, P]
    return out


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
    ``lr = learning_rate(cfg)`` it is the SGD curve's last point."""
    p = cfg.backprop_cloning
    device = train.images.device  # SGD runs where the data lives
    batch, weights = _seeded_runs(train, layer_sizes, seeds, p.test_learner_batch, device)
    for t in range(p.test_steps):
        weights, _ = mlp_sgd_step(weights, *batch(t), lr)
    xs, ys = test.images[:p.eval_examples].to(device), test.labels[:p.eval_examples].to(device)
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


def arrangement(cfg: Config, name: str) -> List[int]:
    """Layer sizes of the ``shallow`` (A -> 10) or ``deep`` (A -> 32 -> 10) learner."""
    p = cfg.backprop_cloning
    A = p.input_side ** 2
    if name == "shallow":
        return [A, NUM_CLASSES]
    if name == "deep":
        return [A, p.deep_hidden, NUM_CLASSES]
    raise ValueError(f"unknown arrangement {name!r}; valid: shallow, deep")


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

    ``cache``: finished runs are saved there one by one, so an interrupted evaluation resumes
    where it stopped (a run stopped part-way starts again). ``deadline``
    (``time.monotonic()``): start no new run after it (the result then lacks the runs not
    done). The shallow runs go first: a deep run costs about 3.4 times as much (its learner has
    that many more sub-LSTMs), so a session that ends part-way banks more finished runs.
    Returns ``{run_key: {"fidelity": {...}, "curves": {...}, "seconds": s, "code_version": v}}``
    in the order of ``evaluations``: each run keeps how long it took and the code that ran it,
    since the runs of one evaluation may come from several sessions. (Caches written before
    runs were timed lack the last two.)
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
        fid = fidelity(lstm, cfg, splits[dataset, False], sizes, seed=cfg.seed,
                       accumulate=p.fidelity_steps if arch == "shallow" else 0)
        curves = learning_curves(lstm, cfg, splits[dataset, True], splits[dataset, False], sizes,
                                 seeds=[cfg.seed + s for s in range(p.test_seeds)], progress=progress,
                                 desc=key)
        done[key] = {"fidelity": fid, "curves": curves, "seconds": round(time.perf_counter() - started, 1),
                     "code_version": code_version()}
        if cache is not None:
            save_checkpoint(cache, done)
    return {key: done[key] for key in (run_key(*e) for e in evaluations) if key in done}


#: Column order of :func:`accuracy_table` (JSON records sort keys; display in this order).
ACCURACY_COLUMNS = ("clone", "dataset", "arrangement", "steps", "clone accuracy", "SGD accuracy",
                    "paper (clone)", "seeds")


def accuracy_table(results: Dict[str, Dict], cfg: Config) -> List[Dict[str, object]]:
    """Rows of the chapter's results table: final test accuracy of the clone and of SGD (mean
    ± std over seeds) beside the paper's number."""
    rows = []
    for key, r in results.items():
        clone, dataset, arch = key.split("/")
        c, s = r["curves"]["clone"]["test_accuracy"][:, -1], r["curves"]["sgd"]["test_accuracy"][:, -1]
        paper = PAPER_ACCURACY.get((dataset, arch)) if clone == "curriculum" else None
        rows.append({"clone": clone, "dataset": dataset, "arrangement": arch,
                     "steps": r["curves"]["steps"][-1],
                     "clone accuracy": f"{100 * c.mean():.1f} ± {100 * c.std():.1f}%",
                     "SGD accuracy": f"{100 * s.mean():.1f} ± {100 * s.std():.1f}%",
                     "paper (clone)": f"{100 * paper:.0f}%" if paper else "-",
                     "seeds": int(c.numel())})
    return rows


def save_backprop_clone(path: Union[str, Path], cfg: Config, result: CloneTrainResult,
                        results: Dict[str, Dict]) -> Path:
    """Save V_M of both clones, the learning curves (tensors) and a JSON record with the config,
    seed, cloning curves, fidelity and the accuracy table.

    The record's ``eval_seconds`` is the sum of the meta-test runs' own times (``eval_runs``
    keeps each run's seconds and code version), and ``code_versions`` lists the code of the
    cloning (oldest first), then any other code that ran a meta-test run (in the runs' order). A run from a cache written before runs
    were timed has neither; ``eval_untimed`` names such runs, so the sum is not read as the whole.
    """
    timed = {k: {"seconds": r["seconds"], "code_version": r["code_version"]}
             for k, r in results.items() if "seconds" in r}
    curves = {}
    for key, r in results.items():
        c = r["curves"]
        curves[key] = {"steps": torch.tensor(c["steps"]), "eval_steps": torch.tensor(c["eval_steps"]),
                       **{f"{who}_{what}": c[who][what] for who in ("clone", "sgd")
                          for what in ("train_loss", "test_accuracy")}}
    meta = {
        "kind": KIND, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
        "clone_layout": CLONE_LAYOUT,
        "metrics": {"accuracy": accuracy_table(results, cfg),
                    "final": {k: {"clone_mean": r["curves"]["clone"]["test_accuracy"][:, -1].mean().item(),
                                  "sgd_mean": r["curves"]["sgd"]["test_accuracy"][:, -1].mean().item()}
                              for k, r in results.items()},
                    "fidelity": {k: r["fidelity"] for k, r in results.items()},
                    "train_seconds": round(result.seconds, 1),
                    "eval_seconds": round(sum(t["seconds"] for t in timed.values()), 1),
                    "eval_runs": timed, "eval_untimed": [k for k in results if k not in timed],
                    "device": str(get_device(cfg.device))},
        "curves": result.curves,
        "code_versions": list(dict.fromkeys([*result.code_versions,
                                             *(t["code_version"] for t in timed.values())])),
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
    ``deadline`` (``time.monotonic()``) cloning may stop early, checkpointed: then nothing is
    written and ``None`` is returned."""
    check_datasets(("mnist", "fashion_mnist"), cfg.data.root, cfg.data.download)  # all a run needs, before it starts
    out = Path(out) if out is not None else live_path(KIND, cfg.preset)
    ckpt = Path(checkpoint) if checkpoint is not None else out.with_suffix(".ckpt")
    eval_ckpt = ckpt.with_suffix(".eval.ckpt")
    result = train_backprop_cloning(cfg, checkpoint=ckpt, progress=progress, deadline=deadline)
    if not result.finished:
        return None
    lstms = {"curriculum": result.lstm, "random": load_clone_state(cfg, result.snapshots["local"])}
    device = get_device(cfg.device)
    lstms = {k: v.to(device) for k, v in lstms.items()}
    results = evaluate_clones(cfg, lstms, cache=eval_ckpt, progress=progress, deadline=deadline)
    if len(results) < len(EVALUATIONS):  # the deadline came first; the evaluation resumes next time
        return None
    path = save_backprop_clone(out, cfg, result, results)
    ckpt.unlink(missing_ok=True)
    eval_ckpt.unlink(missing_ok=True)
    return path


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
