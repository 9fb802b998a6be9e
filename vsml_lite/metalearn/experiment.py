"""The Chapter 5 experiment: meta-test the meta-trained learners beside online Adam on the
same streams (Figure 6), judge the paper's claims, and the artifact that records it all.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..artifacts import code_version, live_path, load_artifact, save_artifact
from ..claims import Verdict
from ..config import FASHION_STATS, Config
from ..data import DATASET_NAMES, check_datasets
from ..device import get_device
from ..distributed import distributed_context
from .baselines import BASELINES, choose_learning_rate, claim_steps, online_backprop
from .episodes import meta_test, test_streams
from .learners import MODELS, build_learner, learned_variable_counts
from .memory import meta_gradient_memory
from .meta_training import SCOPE_PROCESS, MetaTrainResult, load_split, meta_train

#: Name of the artifact kind (``vsml_lite/pretrained/meta_learning_<preset>``).
KIND = "meta_learning"
#: Display names.
LABELS = {"vsml": "VSML (VS Meta RNN)", "vsml_layernorm": "VSML, LayerNorm on messages",
          "meta_rnn_fixed": "Meta RNN, fixed labels (the paper's)",
          "meta_rnn": "Meta RNN, permuted labels",
          "adam_linear": "online Adam, linear", "adam_mlp": "online Adam, 1 hidden layer"}
#: Names in running text.
SHORT_LABELS = {"vsml": "VSML network", "vsml_layernorm": "VSML network with LayerNorm",
                "meta_rnn_fixed": "fixed-label Meta RNN",
                "meta_rnn": "permuted-label Meta RNN"}
#: Datasets of the meta-test: MNIST (the meta-training distribution) and Fashion-MNIST (unseen).
TEST_DATASETS = ("mnist", "fashion_mnist")
#: Offset added to a stream's index to get its seed: meta-test streams never share a seed
#: with the learning-rate search's streams (which use 0, 1, ...).
TEST_STREAM_SEED = 1000
#: Accuracy within this margin of chance (10%) counts as "has not learned" in Chapter 5's prose.
CHANCE_MARGIN = 0.05


def evaluate(cfg: Config, learners: Dict[str, nn.Module], progress: bool = True) -> Dict[str, object]:
    """Meta-test the learners and run the baselines on the same streams (Figure 6).

    Online Adam's learning rates are chosen first on MNIST training streams
    (:func:`choose_learning_rate`). Then, on ``test_seeds`` streams of ``test_steps`` examples
    of the MNIST and Fashion-MNIST test splits (:func:`test_streams`), every learner and
    baseline runs once. Labels are the datasets' own (no permutation).

    Fashion-MNIST also runs standardised the other way (:func:`other_fashion_stats`), as an
    ablation of ``fashion_stats``, on the same streams: curves ``"<model>/<ablation key>"``
    (:func:`fashion_ablation_key`).

    Returns ``{"curves": {"<model>/<dataset>": {"accuracy", "loss"}}, "lr_search": ...,
    "counts": {model: {"V_M", "V_L"}}, "seconds"}``.
    """
    from tqdm.auto import tqdm

    m = cfg.meta_learning
    start = time.perf_counter()
    train = load_split(cfg, "mnist", train=True)
    hidden = {name: (m.adam_hidden if h is None else h) for name, h in BASELINES.items()}
    lr_search = {name: choose_learning_rate(cfg, train, h) for name, h in hidden.items()}
    seeds = [TEST_STREAM_SEED + i for i in range(m.test_seeds)]
    curves, counts = {}, {k: learned_variable_counts(v) for k, v in learners.items()}
    ablation = fashion_ablation_key(cfg)
    other = cfg.override({"meta_learning.fashion_stats": other_fashion_stats(cfg)})
    split = {**{ds: (cfg, ds) for ds in TEST_DATASETS}, ablation: (other, "fashion_mnist")}
    jobs = [(ds, name) for ds in split for name in (*learners, *BASELINES)]
    bar = tqdm(jobs, disable=not progress, desc="meta-testing")
    streams = {}
    for ds, name in bar:
        bar.set_postfix(run=f"{name}/{ds}")
        if ds not in streams:
            streams = {ds: test_streams(load_split(*split[ds], train=False), seeds, m.test_steps)}
        images, labels = streams[ds]
        if name in learners:
            out = meta_test(learners[name], images, labels, seed=cfg.seed + 2, state_clip=m.state_clip)
        else:
            out = online_backprop(images, labels, hidden[name], lr_search[name]["lr"], seed=cfg.seed + 2)
            counts[name] = {"V_M": 1, "V_L": out["num_parameters"]}
        curves[f"{name}/{ds}"] = {"accuracy": out["accuracy"], "loss": out["loss"]}
    return {"curves": curves, "lr_search": lr_search, "counts": counts,
            "seconds": round(time.perf_counter() - start, 1)}


def other_fashion_stats(cfg: Config) -> str:
    """The Fashion-MNIST standardisation ``cfg`` does not use: the meta-test's ablation."""
    return next(k for k in FASHION_STATS if k != cfg.meta_learning.fashion_stats)


def fashion_ablation_key(cfg: Config) -> str:
    """Curve key (after ``"<model>/"``) of Fashion-MNIST standardised the other way:
    ``"fashion_mnist@own_stats"`` or ``"fashion_mnist@mnist_stats"``."""
    return f"fashion_mnist@{other_fashion_stats(cfg)}_stats"


def fashion_stats_table(evaluation: Dict[str, object], cfg: Config) -> List[Dict[str, object]]:
    """Fashion-MNIST accuracy under both standardisations, one row per model and baseline,
    at :func:`claim_steps` and ``test_steps`` (mean over the streams, percent), from
    :func:`evaluate`'s curves; empty for records made before the ablation existed."""
    curves, ablation = evaluation["curves"], fashion_ablation_key(cfg)
    used, other = cfg.meta_learning.fashion_stats, other_fashion_stats(cfg)
    name_of = {"mnist": "MNIST stats", "own": "own stats"}  # short: five columns fit the page
    rows = []
    for name in (*MODELS, *BASELINES):
        if f"{name}/{ablation}" not in curves:
            continue
        row = {"model": LABELS[name]}
        for stats, key in ((used, "fashion_mnist"), (other, ablation)):
            acc = curves[f"{name}/{key}"]["accuracy"]  # [T, S]
            for steps in sorted({claim_steps(cfg), cfg.meta_learning.test_steps}):
                row[f"{name_of[stats]} @{steps}"] = f"{100 * acc[min(steps, acc.shape[0]) - 1].mean():.1f}%"
        rows.append(row)
    return rows


#: The paper's Figure 6 in words (it gives no numbers): what the chapter checks.
CLAIMS = (
    "On MNIST test streams, VSML's accuracy beats online Adam's.",
    "On Fashion-MNIST, VSML still beats online Adam.",
    "The Meta RNN's drop from MNIST to Fashion-MNIST is larger than VSML's.",
)


def results_table(evaluation: Dict[str, object], cfg: Config) -> List[Dict[str, object]]:
    """One row per model: |V_M|, |V_L| and the accuracy over the first ``episode_length``,
    :func:`claim_steps` and ``test_steps`` steps on each dataset, as ``"mean ± std"`` percent over
    the streams (columns ``"MNIST @200 (%)"``), with the means as numbers in ``_<dataset>@<steps>``
    keys for the claims."""
    m = cfg.meta_learning
    rows = []
    for name in (*MODELS, *BASELINES):
        if f"{name}/mnist" not in evaluation["curves"]:
            continue
        row = {"model": LABELS[name], "|V_M|": evaluation["counts"][name]["V_M"],
               "|V_L|": evaluation["counts"][name]["V_L"]}
        for ds in TEST_DATASETS:
            acc = evaluation["curves"][f"{name}/{ds}"]["accuracy"]  # [T, S]
            for steps in sorted({min(m.episode_length, m.test_steps), claim_steps(cfg), m.test_steps}):
                a = acc[min(steps, acc.shape[0]) - 1]
                row[f"{DATASET_NAMES[ds]} @{steps} (%)"] = f"{100 * a.mean():.1f} ± {100 * a.std():.1f}"
                row[f"_{ds}@{steps}"] = a.mean().item()
                row[f"_{ds}@{steps}_std"] = a.std().item()
        row["_name"] = name
        rows.append(row)
    return rows


def check_claims(rows: List[Dict[str, object]], cfg: Config) -> List[Dict[str, object]]:
    """The three claims of :data:`CLAIMS`, each judged at two horizons (:mod:`vsml_lite.claims`):
    the first :func:`claim_steps` steps (the paper's meta-training episode length, 200) and
    the whole meta-test stream (``test_steps``, Figure 6's x axis: 2,000). Online Adam is the
    better of the two baselines on each dataset; the Meta RNN is :func:`paper_meta_rnn`. Returns
    :meth:`~vsml_lite.claims.Verdict.to_dict` rows, the first horizon's first."""
    by = {r["_name"]: r for r in rows}
    out = []
    for T in sorted({claim_steps(cfg), cfg.meta_learning.test_steps}):
        horizon = f"the first {T:,} steps"
        for ds, claim in (("mnist", CLAIMS[0]), ("fashion_mnist", CLAIMS[1])):
            adam = max(by[b][f"_{ds}@{T}"] for b in BASELINES)
            vsml = by["vsml"][f"_{ds}@{T}"]
            out.append(Verdict(claim, horizon, f"VSML {100 * vsml:.1f}%, the better online Adam "
                               f"{100 * adam:.1f}%", vsml > adam))
        rnn = paper_meta_rnn(by)
        drop = {k: by[k][f"_mnist@{T}"] - by[k][f"_fashion_mnist@{T}"] for k in ("vsml", rnn)}
        out.append(Verdict(CLAIMS[2], horizon, f"from MNIST to Fashion-MNIST, the {SHORT_LABELS[rnn]}'s accuracy "
                           f"{_change(drop[rnn])} and VSML's {_change(drop['vsml'])}",
                           drop[rnn] > drop["vsml"]))
    return [v.to_dict() for v in out]


def paper_meta_rnn(models) -> str:
    """The Meta RNN that Figure 6's overfitting claim is judged on: the paper's
    (``meta_rnn_fixed``) where ``models`` has it; records made before it existed have only the
    permuted-label one (``meta_rnn``)."""
    return "meta_rnn_fixed" if "meta_rnn_fixed" in models else "meta_rnn"


def _change(drop: float) -> str:
    """A fall in accuracy (a fraction) as words: "falls 1.5 points", "rises 1.1 points" or
    "does not change" (under 0.05 points either way)."""
    if round(100 * abs(drop), 1) == 0:
        return "does not change"
    return f"{'falls' if drop > 0 else 'rises'} {100 * abs(drop):.1f} points"


def public_rows(rows: List[Dict[str, object]], counts: bool = True) -> List[Dict[str, object]]:
    """The table rows without the helper keys (those starting with ``_``), and without the
    ``|V_M|``, ``|V_L|`` columns when ``counts`` is false (a chapter that shows them apart)."""
    return [{k: v for k, v in r.items() if not k.startswith("_") and (counts or not k.startswith("|"))}
            for r in rows]


def save_meta_learning(path: Union[str, Path], cfg: Config, results: Dict[str, MetaTrainResult],
                       evaluation: Dict[str, object], memory: Optional[Dict[str, object]] = None,
                       trained_by: Optional[str] = None) -> Path:
    """Save both meta-trained learners, the meta-test curves and a JSON record (config, seed,
    preset, code version, meta-training time and peak memory, learning-rate search, results
    table, claims). ``trained_by``: the code version that meta-trained the learners, when it
    is not the one evaluating them (:func:`reevaluate`)."""
    rows = results_table(evaluation, cfg)
    device = str(get_device(cfg.device))
    meta = {
        "code_version": trained_by or code_version(), "evaluation_code_version": code_version(),
        "kind": KIND, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
        "metrics": {
            "meta_training": {k: {"seconds": round(r.seconds, 1), "peak_memory_mb": round(r.peak_memory_mb, 1),
                                  "peak_memory_scope": r.peak_memory_scope,
                                  "final_loss": r.losses[-1] if r.losses else None,
                                  "final_accuracy": r.accuracies[-1] if r.accuracies else None,
                                  **learned_variable_counts(r.learner)}
                              for k, r in results.items()},
            "device": device, "eval_seconds": evaluation["seconds"],
            "lr_search": {k: {"lr": v["lr"], "scores": {str(lr): s for lr, s in v["scores"].items()}}
                          for k, v in evaluation["lr_search"].items()},
            "results": rows, "claims": check_claims(rows, cfg), "memory": memory or {},
        },
        "curves": {k: {"steps": r.steps, "loss": r.losses, "accuracy": r.accuracies} for k, r in results.items()},
        "code_versions": {k: r.code_versions for k, r in results.items() if r.code_versions},
    }
    tensors = {"learners": {k: {n: p.detach().cpu() for n, p in r.learner.state_dict().items()}
                            for k, r in results.items()},
               "curves": {k: {n: v.to(torch.float32) for n, v in c.items()} for k, c in evaluation["curves"].items()}}
    return save_artifact(path, tensors, meta)


def train_and_save(cfg: Config, out: Union[str, Path, None] = None, progress: bool = True,
                   models: Sequence[str] = MODELS, checkpoint: Union[str, Path, None] = None,
                   deadline: Optional[float] = None) -> Optional[Path]:
    """Meta-train every model (resumably: ``<checkpoint>.<model>.ckpt``, ``checkpoint``
    defaulting to ``out``), evaluate, and save the artifact; returns its path. Checkpoints are
    removed once the artifact is written. With a ``deadline`` (``time.monotonic()``)
    meta-training may stop early, checkpointed: then nothing is written and ``None`` is
    returned. Under ``torch.distributed`` every process meta-trains; rank 0 evaluates and
    writes (the others return ``None``)."""
    check_datasets(TEST_DATASETS, cfg.data.root, cfg.data.download)  # all a run needs, before it starts
    out = Path(out) if out is not None else live_path(KIND, cfg.preset)
    base = Path(checkpoint) if checkpoint is not None else out
    ckpts = {model: base.with_suffix(f".{model}.ckpt") for model in models}
    data = load_split(cfg, "mnist", train=True)
    results = {}
    for model in models:
        results[model] = meta_train(cfg, model, checkpoint=ckpts[model], progress=progress, data=data,
                                    deadline=deadline)
        if not results[model].finished:
            return None
    if distributed_context()[0] != 0:
        return None
    evaluation = evaluate(cfg, {k: r.learner.eval() for k, r in results.items()}, progress=progress)
    memory = {f"chunk_{c}": meta_gradient_memory(cfg, "vsml", c)
              for c in (0, cfg.meta_learning.checkpoint_chunk)}
    path = save_meta_learning(out, cfg, results, evaluation, memory)
    for ckpt in ckpts.values():
        ckpt.unlink(missing_ok=True)
    return path


#: Settings that shape meta-training; :func:`reevaluate` refuses a config that changes them.
TRAINING_FIELDS = ("input_side", "episode_length", "meta_batch", "iterations", "lr", "grad_clip",
                   "checkpoint_chunk", "permute_labels", "state_clip", "meta_rnn_hidden", "meta_optimizer",
                   "es_sigma")


def reevaluate(cfg: Config, path: Union[str, Path], progress: bool = True, train: Sequence[str] = (),
               deadline: Optional[float] = None) -> Optional[Path]:
    """Meta-test the learners of an existing artifact again with the evaluation settings of
    ``cfg`` (baselines' learning rates, streams, seeds) and the current memory probe, and
    rewrite the artifact. The meta-trained V_M, their curves, times and the code version that
    trained them are kept; ``evaluation_code_version`` records the code evaluating them.

    ``train`` names models the artifact lacks (e.g. a model added to :data:`MODELS` since):
    they are meta-trained first, with the artifact's settings, resumably
    (``<path>.<model>.ckpt``; with a ``deadline`` the run may stop there and return ``None``),
    and evaluated beside the others. Each model's record keeps the code versions that
    meta-trained it.

    Raises ``ValueError`` when ``cfg`` differs from the artifact in anything that shaped
    meta-training (the seed, ``cfg.network``, :data:`TRAINING_FIELDS`), or when a model in
    ``train`` is unknown or already in the artifact."""
    record = load_artifact(path)
    old = Config.from_dict(record.meta["config"])
    changed = [f"meta_learning.{f}" for f in TRAINING_FIELDS
               if getattr(old.meta_learning, f) != getattr(cfg.meta_learning, f)]
    changed += ["seed"] * (old.seed != cfg.seed) + ["network"] * (old.network != cfg.network)
    if changed:
        raise ValueError(f"{path} was meta-trained with other {', '.join(changed)}; re-evaluating would "
                         "mislabel it; meta-train again instead")
    _, learners = load_learners(record)
    bad = [m for m in train if m not in MODELS or m in learners]
    if bad:
        raise ValueError(f"cannot add {', '.join(bad)} to {path}: models it has: {', '.join(learners)}; "
                         f"models there are: {', '.join(MODELS)}")
    device = get_device(cfg.device)
    curves, trained = record.meta["curves"], record.meta["metrics"]["meta_training"]
    results = {k: MetaTrainResult(learner=v.to(device), steps=curves[k]["steps"], losses=curves[k]["loss"],
                                  accuracies=curves[k]["accuracy"], seconds=trained[k]["seconds"],
                                  peak_memory_mb=trained[k]["peak_memory_mb"],
                                  peak_memory_scope=trained[k].get("peak_memory_scope", SCOPE_PROCESS),
                                  code_versions=record.meta.get("code_versions", {}).get(k, []))
               for k, v in learners.items()}
    data = load_split(cfg, "mnist", train=True) if train else None
    for model in train:
        ckpt = Path(path).with_suffix(f".{model}.ckpt")
        results[model] = meta_train(cfg, model, checkpoint=ckpt, progress=progress, data=data, deadline=deadline)
        if not results[model].finished:
            return None
    results = {k: results[k] for k in MODELS if k in results}  # in the chapter's order
    learners = {k: r.learner.eval() for k, r in results.items()}
    evaluation = evaluate(cfg, learners, progress=progress)
    memory = {f"chunk_{c}": meta_gradient_memory(cfg, "vsml", c) for c in (0, cfg.meta_learning.checkpoint_chunk)}
    out = save_meta_learning(path, cfg, results, evaluation, memory, trained_by=record.meta["code_version"])
    for model in train:
        Path(path).with_suffix(f".{model}.ckpt").unlink(missing_ok=True)
    return out


def load_learners(record) -> Tuple[Config, Dict[str, nn.Module]]:
    """The config and meta-trained learners of a loaded artifact (on the CPU)."""
    cfg = Config.from_dict(record.expect(KIND).meta["config"]).override({"device": "cpu"})
    learners = {}
    for name, state in record.tensors["learners"].items():
        learner = build_learner(cfg, name)
        learner.load_state_dict(state)
        learners[name] = learner.eval()
    return cfg, learners


def evaluation_from_record(record) -> Dict[str, object]:
    """The ``evaluation`` dict of :func:`evaluate` rebuilt from a loaded artifact."""
    m = record.meta["metrics"]
    counts = {r["_name"]: {"V_M": r["|V_M|"], "V_L": r["|V_L|"]} for r in m["results"]}
    lr_search = {k: {"lr": v["lr"], "scores": {float(lr): s for lr, s in v["scores"].items()}}
                 for k, v in m["lr_search"].items()}
    return {"curves": record.tensors["curves"], "lr_search": lr_search, "counts": counts,
            "seconds": m["eval_seconds"]}
