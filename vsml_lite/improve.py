"""Improving cloned backpropagation with CMA-ES (Appendix B, Figure 9, Table 2). Chapter 6.

Start from the V_M that Chapter 4 cloned to run backpropagation (by default the clone trained
on random data only, as in Figure 9) and search around it with CMA-ES (the ``cma`` package,
ask/tell) for a V_M whose learner does better: the objective of a candidate is the mean
cross-entropy of the cloned learner over ``inner_steps`` learner steps on MNIST training
data, starting from fresh random weights (Appendix B: "minimizing the loss after 10,000 steps
of unrolling"; we take the loss over the whole unroll, so that learning fast counts).

Every generation draws one set of initial weights and one data stream (from a seed and the
generation number) and evaluates every candidate on them (common random numbers: the
candidates are compared on the same task). :func:`population_losses` runs the population
either as one batched learner (``torch.func.vmap`` over a population axis of V_M, in chunks of
``population_chunk`` candidates: few, large launches, what a GPU wants) or one candidate after
another through the fused CPU kernel (the CPU's fast path: at the ``cpu`` preset on one
thread a step of 10 candidates takes about 0.09 s this way against 0.52 s under vmap, whose
unfused elementwise passes over ``[P, n, ...]`` tensors dominate). With ``torch.distributed``
initialised (``torchrun``), the chunks are spread over the processes and the losses summed
with ``all_reduce``; every process runs the same seeded CMA-ES, so all of them ask and tell
the same populations and the result equals the single-process one.
"""

from __future__ import annotations

import math
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from . import backprop as bp
from . import claims
from . import training
from .artifacts import live_path, load_artifact, pretrained_path, save_artifact
from .claims import Verdict
from .config import Config
from .data import DATASET_NAMES, TensorData, check_datasets
from .device import get_device, make_generator
from .distributed import all_reduce_sum, distributed_context
from .network import SubLSTM

#: Name of the artifact kind (``vsml_lite/pretrained/improve_backprop_<preset>``).
KIND = "improve_backprop"
#: The learners compared at meta-test time.
LEARNERS = ("clone", "improved", "sgd")
LABELS = {"clone": "cloned backprop", "improved": "improved by CMA-ES", "sgd": "SGD (autograd)"}
#: Datasets of the meta-test: MNIST (searched on) and Fashion-MNIST (never seen).
TEST_DATASETS = ("mnist", "fashion_mnist")


# ----------------------------------------------------------------------------------------
# V_M as a vector, and a population of them as one batched learner
# ----------------------------------------------------------------------------------------

def parameter_names(lstm: SubLSTM) -> List[str]:
    """The sub-LSTM's parameters in the order of the flat vector."""
    return [name for name, _ in lstm.named_parameters()]


def to_vector(lstm: SubLSTM) -> torch.Tensor:
    """V_M flattened: ``[D]`` (float64 on the CPU, as CMA-ES works in float64)."""
    return torch.cat([p.detach().reshape(-1) for p in lstm.parameters()]).to("cpu", torch.float64)


def from_vectors(lstm: SubLSTM, vectors: torch.Tensor) -> Dict[str, torch.Tensor]:
    """``vectors [P, D]`` -> ``{name: [P, *shape]}`` in ``lstm``'s dtype and device."""
    p0 = next(lstm.parameters())
    if vectors.dim() != 2 or vectors.shape[1] != lstm.num_meta_variables():
        raise ValueError(f"vectors must be [P, {lstm.num_meta_variables()}] (the sub-LSTM's V_M), "
                         f"got {list(vectors.shape)}")
    vectors = vectors.to(p0.device, p0.dtype)
    out, start = {}, 0
    for name, p in lstm.named_parameters():
        out[name] = vectors[:, start : start + p.numel()].reshape(vectors.shape[0], *p.shape)
        start += p.numel()
    return out


def load_vector(lstm: SubLSTM, vector: torch.Tensor) -> SubLSTM:
    """A copy of ``lstm`` with V_M set from ``vector [D]``."""
    new = SubLSTM(lstm.hidden_size, lstm.msg_size, lstm.position_inputs, layer_norm=lstm.layer_norm)
    new.load_state_dict({k: v[0] for k, v in from_vectors(lstm, vector[None]).items()})
    return new.to(next(lstm.parameters()).device)


class _ParameterView:
    """Stands in for a :class:`SubLSTM` inside ``vmap``: the same attributes, holding one
    candidate's tensors (what :func:`~vsml_lite.network.dense_ticks` reads)."""

    def __init__(self, params: Dict[str, torch.Tensor], like: SubLSTM) -> None:
        self.__dict__.update(params)
        self.hidden_size, self.msg_size, self.position_inputs = like.hidden_size, like.msg_size, like.position_inputs
        self.layer_norm = like.layer_norm
        self.gate_scale, self.gate_bias = like.gate_scale, like.gate_bias
        if "w_pos" not in params:
            self.w_pos = None


def _unroll_one(lstm, cfg: Config, layer_sizes, weights, xs, ys, fused: bool) -> torch.Tensor:
    """One candidate's learner (``lstm``: a :class:`SubLSTM` or, inside ``vmap``, a
    :class:`_ParameterView`) over the stream: per-step mean cross-entropy ``[T]``."""
    p = cfg.backprop_cloning
    learner = bp.make_learner(lstm, cfg, layer_sizes, fused=fused)
    state = bp.state_from_weights(learner, weights, xs.shape[1], p.state_scale)
    losses = []
    for t in range(xs.shape[0]):
        state, logits = learner.learn_step(state, xs[t], ys[t])
        losses.append(nn.functional.cross_entropy(logits, ys[t]))
    return torch.stack(losses)


@torch.no_grad()
def population_losses(like: SubLSTM, vectors: torch.Tensor, cfg: Config, layer_sizes: Sequence[int],
                      weights, xs: torch.Tensor, ys: torch.Tensor, chunk: int,
                      batched: Optional[bool] = None) -> torch.Tensor:
    """Run the cloned learner with every V_M in ``vectors [P, D]`` on the same stream, from the
    same initial ``weights``: ``xs [T, n, A]``, ``ys [T, n]`` (one learner batch of ``n``
    copies per step). Returns the per-step losses ``[P, T]``.

    ``batched=True`` maps the population with ``torch.func.vmap`` in chunks of ``chunk``
    candidates: one batched run per chunk. ``batched=False`` runs the candidates one after
    another, each through the plain learner (with the fused kernel where it is built). Both
    give the same losses (tested). ``None`` picks the faster for the device: batched on CUDA,
    one by one elsewhere (module docstring).
    """
    if batched is None:
        batched = next(like.parameters()).device.type == "cuda"  # candidates run where ``like`` lives
    if not batched:
        return torch.stack([_unroll_one(load_vector(like, v), cfg, layer_sizes, weights, xs, ys, fused=True)
                            .float().cpu() for v in vectors])
    from torch.func import vmap

    run = vmap(lambda prm: _unroll_one(_ParameterView(prm, like), cfg, layer_sizes, weights, xs, ys,
                                       fused=False))
    out = []
    for start in range(0, vectors.shape[0], chunk):
        out.append(run(from_vectors(like, vectors[start : start + chunk])).float().cpu())
    return torch.cat(out)


# ----------------------------------------------------------------------------------------
# torch.distributed: spreading the population over processes
# ----------------------------------------------------------------------------------------

def spread_population_losses(like: SubLSTM, vectors: torch.Tensor, cfg: Config, layer_sizes, weights,
                             xs, ys, chunk: int) -> torch.Tensor:
    """:func:`population_losses`, with the chunks dealt round-robin to the processes of the
    default process group and the results combined with an all-reduce (each entry is computed
    by exactly one process; the others contribute 0). Without a process group it is
    :func:`population_losses`. Returns ``[P, T]`` on every process."""
    rank, world = distributed_context()
    if world == 1:
        return population_losses(like, vectors, cfg, layer_sizes, weights, xs, ys, chunk)
    P, T = vectors.shape[0], xs.shape[0]
    out = torch.zeros(P, T)
    for k, start in enumerate(range(0, P, chunk)):
        if k % world == rank:
            out[start : start + chunk] = population_losses(like, vectors[start : start + chunk], cfg,
                                                           layer_sizes, weights, xs, ys, chunk)
    return all_reduce_sum(out)


# ----------------------------------------------------------------------------------------
# The search
# ----------------------------------------------------------------------------------------

def search_config(cfg: Config, clone_cfg: Config) -> Config:
    """The Chapter 4 clone's config with this chapter's learner settings: the input size,
    learner batch and meta-test settings of ``cfg.improve`` (the clone's micro ticks, state
    scale and learning rate stay as they were cloned)."""
    i = cfg.improve
    return clone_cfg.override({
        "device": cfg.device, "seed": cfg.seed, "data.root": cfg.data.root,
        "backprop_cloning.input_side": i.input_side, "backprop_cloning.test_learner_batch": i.learner_batch,
        "backprop_cloning.test_steps": i.test_steps, "backprop_cloning.eval_every": i.eval_every,
        "backprop_cloning.eval_examples": i.eval_examples})


def load_source_clone(cfg: Config):
    """``(clone_cfg, lstm)``: the Chapter 4 clone named by ``cfg.improve.source_clone`` from
    the artifact ``backprop_cloning_<cfg.improve.source_artifact>``."""
    record = load_artifact(pretrained_path(bp.KIND, cfg.improve.source_artifact))
    clone_cfg, clones = bp.load_backprop_clone(record)
    name = cfg.improve.source_clone
    if name not in clones:
        raise ValueError(f"unknown source_clone {name!r}; the artifact has: {', '.join(clones)}")
    return clone_cfg, clones[name].to(get_device(cfg.device))


def generation_task(cfg: Config, train: TensorData, generation: int, layer_sizes: Sequence[int], device):
    """The task of one generation, the same for every candidate and every process: initial
    weights and a stream ``xs [T, n, A]``, ``ys [T, n]`` drawn from ``seed`` and ``generation``."""
    i = cfg.improve
    gen = make_generator(cfg.seed * 1_000_003 + generation)
    weights = bp.init_weights(layer_sizes, 1, gen, device)
    idx = torch.randint(len(train), (i.inner_steps, i.learner_batch), generator=gen)
    return weights, train.images[idx].to(device), train.labels[idx].to(device)


def population_size(cfg: Config, dimension: int) -> int:
    """``cfg.improve.population``, or CMA-ES's default ``4 + ⌊3 ln D⌋`` when that is 0."""
    return cfg.improve.population or 4 + int(3 * math.log(dimension))


@dataclass
class SearchResult:
    """What :func:`search` returns."""

    start: torch.Tensor  # [D] the clone's V_M
    mean: torch.Tensor  # [D] the CMA-ES mean after the last generation: the improved V_M
    history: Dict[str, List[float]] = field(default_factory=dict)
    population: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    #: whether all generations ran (``False`` when a deadline stopped the search, checkpointed)
    finished: bool = True
    #: the code versions that ran it (a search resumed across sessions may have several)
    code_versions: List[str] = field(default_factory=list)


class SearchTask:
    """One CMA-ES generation per iteration, as a :class:`~vsml_lite.training.Task`.

    Each generation evaluates, in one batched run, the CMA-ES mean, the starting clone and the
    population on the generation's task (:func:`generation_task`), then tells CMA-ES the
    population's losses. The metrics ``mean_loss`` and ``clone_loss`` compare the first two
    on the same task. ``cma`` samples from numpy's global generator, so its state is part of
    the checkpoint.
    """

    name = "CMA-ES"

    def __init__(self, cfg: Config, lstm: SubLSTM, clone_cfg: Config, train: TensorData) -> None:
        import cma

        i = self.settings = cfg.improve
        self.cfg, self.lstm, self.train = cfg, lstm, train
        self.total, self.log_every, self.checkpoint_every = i.generations, 1, 1
        self.run_cfg = search_config(cfg, clone_cfg)
        self.sizes = bp.arrangement(self.run_cfg, "shallow")
        self.device = next(lstm.parameters()).device
        self.start = to_vector(lstm)
        self.popsize = population_size(cfg, self.start.numel())
        self.es = cma.CMAEvolutionStrategy(self.start.numpy(), i.sigma0,
                                           {"seed": cfg.seed + 1, "popsize": self.popsize, "verbose": -9,
                                            "CMA_diagonal": i.diagonal})

    def step(self, generation: int) -> Dict[str, object]:
        es = self.es
        candidates = torch.as_tensor(np.asarray(es.ask()), dtype=torch.float64)  # [P, D]
        mean = torch.as_tensor(es.mean, dtype=torch.float64)
        weights, xs, ys = generation_task(self.cfg, self.train, generation, self.sizes, self.device)
        vectors = torch.cat([mean[None], self.start[None], candidates])
        losses = spread_population_losses(self.lstm, vectors, self.run_cfg, self.sizes, weights, xs, ys,
                                          self.settings.population_chunk).mean(1)  # [P + 2]
        fitness = losses[2:].double().numpy()
        es.tell(list(candidates.numpy()), fitness.tolist())
        return {"mean_loss": losses[0], "clone_loss": losses[1], "best_loss": float(fitness.min()),
                "population_loss": float(fitness.mean()), "sigma": float(es.sigma)}

    def state_dict(self) -> Dict[str, object]:
        return {"es": pickle.dumps(self.es), "numpy_random": np.random.get_state()}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.es = pickle.loads(state["es"])
        np.random.set_state(state["numpy_random"])


def search(cfg: Config, lstm: SubLSTM, clone_cfg: Config, train: TensorData,
           checkpoint: Union[str, Path, None] = None, progress: bool = True,
           deadline: Optional[float] = None) -> SearchResult:
    """CMA-ES on V_M, starting at ``lstm``'s (Table 2: initial step size ``sigma0``,
    ``generations`` iterations, ``inner_steps`` learner steps of ``learner_batch`` examples):
    :class:`SearchTask` run by :func:`vsml_lite.training.run`, checkpointed every generation.

    Under ``torch.distributed`` every process must call this with the same arguments; only
    rank 0 writes the checkpoint and shows progress. ``deadline``: stop (checkpointed) at this
    ``time.monotonic()``; see ``finished``.
    """
    task = SearchTask(cfg, lstm, clone_cfg, train)
    rank, _ = distributed_context()
    # A checkpoint of another message layout would continue the search in the wrong slots: refused.
    out = training.run(task, checkpoint, training.config_guard(cfg, ("improve", "network", "data"), clone_layout=bp.CLONE_LAYOUT), progress,
                       deadline, writer=rank == 0)
    history = {"generation": out.history["iteration"],
               **{k: out.history.get(k, []) for k in ("mean_loss", "clone_loss", "best_loss",
                                                      "population_loss", "sigma")}}
    return SearchResult(start=task.start, mean=torch.as_tensor(task.es.mean, dtype=torch.float64), history=history,
                        population=task.popsize, seconds=out.seconds, resumed_from=out.resumed_from,
                        finished=out.finished, code_versions=out.code_versions)


# ----------------------------------------------------------------------------------------
# Meta-test, results, artifact
# ----------------------------------------------------------------------------------------

def meta_test(cfg: Config, clone_cfg: Config, lstms: Dict[str, SubLSTM], progress: bool = True) -> Dict[str, dict]:
    """Figure 9: the clone, the improved clone and SGD on MNIST and Fashion-MNIST, each from
    the same initial weights and data order per seed (Chapter 4's
    :func:`~vsml_lite.backprop.learning_curves`: learning on the training split, accuracy on
    the test split), ``test_seeds`` seeds. Returns ``{dataset: {learner: {"train_loss" [S, T],
    "test_accuracy" [S, P]}, "steps", "eval_steps"}}``."""
    run_cfg = search_config(cfg, clone_cfg)
    sizes = bp.arrangement(run_cfg, "shallow")
    seeds = list(range(cfg.improve.test_seeds))
    out = {}
    for ds in TEST_DATASETS:
        train, test = (bp.load_split(run_cfg, ds, train=t) for t in (True, False))
        runs = {name: bp.learning_curves(lstms[name], run_cfg, train, test, sizes, seeds, progress=progress,
                                         desc=f"meta-test {name} on {ds}") for name in ("clone", "improved")}
        out[ds] = {"clone": runs["clone"]["clone"], "improved": runs["improved"]["clone"],
                   "sgd": runs["clone"]["sgd"], "steps": runs["clone"]["steps"],
                   "eval_steps": runs["clone"]["eval_steps"]}
    return out


def results_table(curves: Dict[str, dict], cfg: Config) -> List[Dict[str, object]]:
    """One row per dataset and learner: the mean training loss over the first ``early_steps``
    and over all steps, and the final test accuracy, as ``"mean ± std"`` over the seeds (with
    the numbers in ``_``-keys for the claims)."""
    k = cfg.improve.early_steps
    rows = []
    for ds in TEST_DATASETS:
        for name in LEARNERS:
            c = curves[ds][name]
            early, whole = c["train_loss"][:, :k].mean(1), c["train_loss"].mean(1)  # [S]
            acc = c["test_accuracy"][:, -1]
            rows.append({"dataset": ds, "learner": LABELS[name],
                         f"loss, first {k} steps": f"{early.mean():.3f} ± {early.std():.3f}",
                         f"loss, all {c['train_loss'].shape[1]} steps": f"{whole.mean():.3f} ± {whole.std():.3f}",
                         "final test accuracy": f"{100 * acc.mean():.1f} ± {100 * acc.std():.1f}%",
                         "_name": name, "_early": early.mean().item(), "_early_std": early.std().item(),
                         "_accuracy": acc.mean().item(), "_accuracy_std": acc.std().item(),
                         "_curve": c["test_accuracy"].mean(0).tolist(),  # [P]: mean over seeds
                         "_curve_std": c["test_accuracy"].std(0).tolist()})
    return rows


#: Figure 9's claims, as the chapter checks them; the paper: meta learning "increases learning
#: speed in the first few gradient steps but then achieves similar performance to the
#: backpropagation cloned algorithm later on", and "does not worsen performance when
#: meta-testing out of distribution on Fashion MNIST".
CLAIMS = (
    "On MNIST, the improved algorithm's loss early in learning is lower than the clone's.",
    "On Fashion-MNIST, the improved algorithm is not worse than the clone early in learning.",
    "On MNIST, the improved algorithm ends with accuracy similar to the clone's.",
    "On Fashion-MNIST, the improved algorithm is not worse than the clone at any point of the meta-test.",
)


def check_claims(rows: List[Dict[str, object]], cfg: Config) -> List[Dict[str, object]]:
    """Figure 9's claims, each at the horizon where the paper makes it (:mod:`vsml_lite.claims`):
    the early ones over the first ``early_steps`` steps (mean training loss; "not worse" allows
    one standard deviation over seeds of the clone's), the later ones over the whole meta-test
    (test accuracy; "similar" and "not worse" allow :data:`~vsml_lite.claims.SIMILAR_POINTS`
    points or the seeds' standard deviation, where larger). Returns
    :meth:`~vsml_lite.claims.Verdict.to_dict` rows."""
    by = {(r["dataset"], r["_name"]): r for r in rows}
    k, T = cfg.improve.early_steps, cfg.improve.test_steps
    early, whole = f"the first {k} steps", f"all {T:,} steps"
    m_c, m_i = by[("mnist", "clone")], by[("mnist", "improved")]
    f_c, f_i = by[("fashion_mnist", "clone")], by[("fashion_mnist", "improved")]
    verdicts = [
        Verdict(CLAIMS[0], early, f"loss: improved {m_i['_early']:.3f}, clone {m_c['_early']:.3f}",
                m_i["_early"] < m_c["_early"]),
        Verdict(CLAIMS[1], early, f"loss: improved {f_i['_early']:.3f}, clone {f_c['_early']:.3f} "
                                  f"± {f_c['_early_std']:.3f}", f_i["_early"] <= f_c["_early"] + f_c["_early_std"]),
    ]
    if "_curve" in m_c:  # rows made before the whole-run claims were judged have no curves
        verdicts.append(Verdict(
            CLAIMS[2], whole, f"final test accuracy: improved {100 * m_i['_accuracy']:.1f}%, clone "
                              f"{100 * m_c['_accuracy']:.1f}% ± {100 * m_c['_accuracy_std']:.1f}",
            claims.similar(m_i["_accuracy"], m_c["_accuracy"], m_c["_accuracy_std"])))
        points = list(zip(f_i["_curve"], f_c["_curve"], f_c["_curve_std"]))  # per evaluation
        worst = min(range(len(points)), key=lambda j: points[j][0] - points[j][1])
        verdicts.append(Verdict(
            CLAIMS[3], whole, f"test accuracy, worst point (evaluation {worst + 1} of {len(points)}): improved "
                              f"{100 * f_i['_curve'][worst]:.1f}%, clone {100 * f_c['_curve'][worst]:.1f}%; final: "
                              f"{100 * f_i['_accuracy']:.1f}% vs {100 * f_c['_accuracy']:.1f}%",
            all(claims.not_worse(i, c, sd) for i, c, sd in points)))
    return [v.to_dict() for v in verdicts]


def how_it_ends(rows: List[Dict[str, object]]) -> str:
    """Where the improved algorithm ends against the clone (final test accuracy, per dataset),
    in words for a chapter's headline: below the clone anywhere (beyond the tolerance of
    :func:`~vsml_lite.claims.not_worse`) means the improvement did not last; above it on MNIST
    means it lasted beyond the "similar performance" the paper saw."""
    by = {(r["dataset"], r["_name"]): r for r in rows}
    ends = {}
    for ds in TEST_DATASETS:
        i, c = by[(ds, "improved")], by[(ds, "clone")]
        gap = i["_accuracy"] - c["_accuracy"]
        side = ("level with" if claims.similar(i["_accuracy"], c["_accuracy"], c["_accuracy_std"])
                else "above" if gap > 0 else "below")
        ends[ds] = (side, f"{DATASET_NAMES[ds]}: {100 * i['_accuracy']:.1f}% against the clone's "
                          f"{100 * c['_accuracy']:.1f}%")
    numbers = "; ".join(text for _, text in ends.values())
    if any(side == "below" for side, _ in ends.values()):
        return f"The improvement the search found does not last ({numbers})."
    if ends["mnist"][0] == "above":
        return (f"The improvement lasts: the improved algorithm ends above the clone ({numbers}), "
                f"where the paper saw similar performance later on.")
    return f"As in the paper, the improved algorithm ends level with the clone or above it ({numbers})."


def public_rows(rows: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """The table rows without the helper keys (those starting with ``_``)."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def save_improved(path: Union[str, Path], cfg: Config, clone_cfg: Config, result: SearchResult,
                  curves: Dict[str, dict], eval_seconds: float) -> Path:
    """Save the starting and the improved V_M, the meta-test curves and a JSON record (config,
    the source clone's config, seed, preset, code version, population size, search history,
    results table, claims)."""
    rows = results_table(curves, cfg)
    _, world = distributed_context()
    meta = {"kind": KIND, "preset": cfg.preset, "seed": cfg.seed, "config": cfg.to_dict(),
            "clone_layout": bp.CLONE_LAYOUT,
            "source": {"artifact": f"{bp.KIND}_{cfg.improve.source_artifact}", "clone": cfg.improve.source_clone,
                       "config": clone_cfg.to_dict()},
            "metrics": {"population": result.population, "dimension": int(result.start.numel()),
                        "search_seconds": round(result.seconds, 1), "eval_seconds": round(eval_seconds, 1),
                        "processes": world, "device": str(get_device(cfg.device)),
                        "results": rows, "claims": check_claims(rows, cfg)},
            "curves": {"search": result.history}, "code_versions": result.code_versions}
    tensors = {"start": result.start, "improved": result.mean,
               "curves": {ds: {name: {k: v for k, v in curves[ds][name].items()} for name in LEARNERS}
                          for ds in TEST_DATASETS},
               "steps": {ds: {"steps": curves[ds]["steps"], "eval_steps": curves[ds]["eval_steps"]}
                         for ds in TEST_DATASETS}}
    return save_artifact(path, tensors, meta)


def train_and_save(cfg: Config, out: Union[str, Path, None] = None, progress: bool = True,
                   checkpoint: Union[str, Path, None] = None, deadline: Optional[float] = None) -> Optional[Path]:
    """Search (resumably: ``checkpoint``, default ``<out>.ckpt``), meta-test and save the
    artifact; returns its path. ``None`` on processes other than rank 0 (which only help with
    the search), and when a ``deadline`` (``time.monotonic()``) stopped the search early,
    checkpointed."""
    check_datasets(TEST_DATASETS, cfg.data.root, cfg.data.download)  # all a run needs, before it starts
    out = Path(out) if out is not None else live_path(KIND, cfg.preset)
    ckpt = Path(checkpoint) if checkpoint is not None else out.with_suffix(".ckpt")
    clone_cfg, lstm = load_source_clone(cfg)
    train = bp.load_split(search_config(cfg, clone_cfg), "mnist", train=True)
    result = search(cfg, lstm, clone_cfg, train, checkpoint=ckpt, progress=progress, deadline=deadline)
    if distributed_context()[0] != 0 or not result.finished:
        return None
    began = time.perf_counter()
    curves = meta_test(cfg, clone_cfg, {"clone": lstm, "improved": load_vector(lstm, result.mean)}, progress)
    path = save_improved(out, cfg, clone_cfg, result, curves, time.perf_counter() - began)
    ckpt.unlink(missing_ok=True)
    return path


def load_improved(record) -> Dict[str, object]:
    """From a loaded artifact: ``cfg``, ``clone_cfg`` and the sub-LSTMs ``clone`` and
    ``improved`` (on the CPU)."""
    cfg = Config.from_dict(record.expect(KIND).meta["config"]).override({"device": "cpu"})
    clone_cfg = Config.from_dict(record.meta["source"]["config"]).override({"device": "cpu"})
    p = clone_cfg.backprop_cloning
    like = SubLSTM(p.hidden_size, p.msg_size)
    layout = bp.clone_layout(record)  # V_M vectors of the layout the source clone was made in

    def load(vector):
        return bp.load_clone_state(clone_cfg, load_vector(like, vector).state_dict(), layout)

    return {"cfg": cfg, "clone_cfg": clone_cfg, "clone": load(record.tensors["start"]),
            "improved": load(record.tensors["improved"])}
