"""One typed configuration with named presets: ``smoke``, ``cpu`` and ``paper``.

Every setting a chapter or script uses lives in :class:`Config` (one frozen dataclass with a
section per chapter). A preset is a complete :class:`Config`; pick one by name::

    import vsml_lite as vl
    cfg = vl.get_config("smoke")                    # by argument
    cfg = vl.get_config()                           # from $VSML_PRESET, else "cpu"
    cfg = vl.get_config("cpu", seed=3)              # top-level override
    cfg = cfg.override({"eq4.trials": 5})           # section.field override

The presets differ only in scale:

* ``smoke``: seconds; what CI runs.
* ``cpu``: minutes on a 2-core laptop; the default.
* ``paper``: the paper's hyperparameters (Tables 1 and 2); needs a GPU for later chapters.

Checkpoints store ``cfg.to_dict()`` and rebuild it with :meth:`Config.from_dict`.
Later chapters add their own section dataclass here; the presets live in :mod:`vsml_lite.presets`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from .validate import (
    DIVIDES_28,
    FRACTION,
    NON_NEGATIVE,
    OneOf,
    Range,
    check_section,
)

#: Values of ``meta_learning.meta_optimizer`` (Chapter 5: backpropagated gradient or OpenAI-ES).
META_OPTIMIZERS = ("gradient", "es")
#: Values of ``meta_learning.fashion_stats``: whose pixel statistics standardise Fashion-MNIST.
FASHION_STATS = ("mnist", "own")
#: Environment variable that chooses the preset when :func:`get_config` gets no name.
PRESET_ENV_VAR = "VSML_PRESET"
#: Preset used when neither an argument nor ``$VSML_PRESET`` names one.
DEFAULT_PRESET = "cpu"

#: Standard deviation of the random inputs used for cloning (Table 1, "Random data std").
RANDOM_DATA_STD = 2.0


class _Checked:
    """Checks every field's type and range when a section is made (:mod:`vsml_lite.validate`):
    ``LIMITS`` maps a field to its allowed values where the default for its type (an int
    >= 1, a float > 0) does not fit; ``SECTION`` prefixes field names in error messages."""

    SECTION = ""
    LIMITS: Dict[str, Any] = {}

    def __post_init__(self) -> None:
        check_section(self)


@dataclass(frozen=True)
class DataConfig(_Checked):
    """Where the data lives and how the random stream of Table 1 is drawn.

    Attributes:
        root: data folder in torchvision's layout; ``None`` means ``$VSML_DATA``, else
            ``~/.cache/vsml_lite/data`` (see :func:`vsml_lite.data.data_root`).
        download: let torchvision download a dataset that is not on disk.
        random_std: standard deviation of the inputs of :class:`vsml_lite.data.RandomStream`.
    """

    SECTION = "data."


    root: Optional[str] = None
    download: bool = True
    random_std: float = RANDOM_DATA_STD


@dataclass(frozen=True)
class Eq4Config(_Checked):
    """Chapter 1: the numerical check that Eq. 3 equals Eq. 1 with W̃ (Eq. 4).

    Attributes:
        trials: number of random (A, N) pairs checked.
        max_A: largest A = B drawn (W̃ has (A²N)² entries, so this grows fast).
        max_N: largest state size N drawn.
        ticks: recurrent steps run with both forms before comparing.
        explorer_A, explorer_N: the W̃ heat-map shown in the static book.
    """

    SECTION = "eq4."


    trials: int = 20
    max_A: int = 6
    max_N: int = 8
    ticks: int = 5
    explorer_A: int = 3
    explorer_N: int = 2


@dataclass(frozen=True)
class NetworkConfig(_Checked):
    """The VSML network of tiny LSTMs (Sections 3.1-3.3; ``vsml_lite.network``).

    Attributes:
        hidden_size: LSTM cell size ``H`` of one sub-LSTM (the official code's 16).
        msg_size: width ``M`` of forward and backward messages (the official code's 8).
        micro_ticks: LSTM ticks per datum and layer.
        reduce: ``"mean"`` or ``"sum"`` of the sub-LSTMs' messages over the grid.
        output_bound: outputs pass through ``bound · tanh(y / bound)``; ``None`` for raw.
        init_rand_fraction: fraction of each fresh cell vector drawn at random.
        position_inputs: feed each sub-LSTM its coordinates (Appendix D).
        meta_test_state_clip: cell state clip at meta-test time (Appendix D: 4).
    """

    SECTION = "network."
    LIMITS = {"reduce": OneOf(("mean", "sum")), "init_rand_fraction": FRACTION}


    hidden_size: int = 16
    msg_size: int = 8
    micro_ticks: int = 2
    reduce: str = "mean"
    output_bound: Optional[float] = 100.0
    init_rand_fraction: float = 0.5
    position_inputs: bool = False
    meta_test_state_clip: float = 4.0


@dataclass(frozen=True)
class ForwardCloningConfig(_Checked):
    """Chapter 3: cloning neural forward computation into one sub-LSTM (Eq. 13, Table 1).

    Attributes:
        hidden_size: LSTM cell size (Table 1: 32).
        msg_size: message width, as in the network.
        ticks: LSTM ticks per example (Section 3.2: a single step on random data).
        batch_size: examples per Adam step (Table 1: 32,768).
        iterations: Adam steps (Table 1: 10^6).
        lr: Adam learning rate (Table 1: 5e-3).
        param_range: weights and biases are drawn from U(-r, r); r = 2 covers the weights and
            biases of small trained MNIST networks.
        log_every: iterations per point of the loss curve.
        checkpoint_every: iterations between checkpoints (a multiple of ``log_every``).
        grid_x, grid_w: points of the (x, w) evaluation grid of the results table.
    """

    SECTION = "forward_cloning."
    LIMITS = {"lr": NON_NEGATIVE}  # 0 leaves V_M as it started (tests use it)


    hidden_size: int = 32
    msg_size: int = 8
    ticks: int = 1
    batch_size: int = 32_768
    iterations: int = 1_000_000
    lr: float = 5e-3
    param_range: float = 2.0
    log_every: int = 1000
    checkpoint_every: int = 10_000
    grid_x: int = 121
    grid_w: int = 81


#: Chapter 4 stores a sub-LSTM's weight and bias in its state divided by this (Appendix C uses
#: 20; see ``BackpropCloningConfig.state_scale``).
STATE_SCALE = 2.0
#: Size of one example's update in the state: each example changes a sub-LSTM's state by
#: -0.01 · e · tanh(x), its weight by -0.02 · e · tanh(x), so the cloned algorithm is SGD with
#: learning rate 0.02. Table 1 gives a "gradient update target norm" of 1e-3, with weights
#: stored divided by 20: the same learning rate. We store them divided by 2 (Chapter 4).
UPDATE_TARGET_SCALE = 1e-2


@dataclass(frozen=True)
class BackpropCloningConfig(_Checked):
    """Chapter 4: cloning backpropagation into the forward dynamics (Section 3.2, Eq. 14,
    Appendix B's curriculum, Table 1), then running the clone as a learner (Figures 5, 7-9).

    Cloning (every stage: Adam at ``lr`` on Smooth L1 losses, Table 1):
        init_forward_clone: ``""`` starts V_M as a fresh sub-LSTM; a preset name (e.g.
            ``"cpu"``, ``"paper"``) starts it from Chapter 3's forward clone of that scale
            (``vsml_lite/pretrained/forward_cloning_<preset>``), as the paper's story goes:
            forward computation first, then backpropagation. Its sizes must match.
        hidden_size: LSTM cell size (Table 1: 32).
        msg_size: message width.
        micro_ticks: LSTM ticks per phase (forward phase, then backward phase) and layer.
        state_scale: weights and biases sit in the state divided by this. Appendix C uses 20
            so that weights up to 20 fit in a state bounded by 1; the weights of these small
            networks stay below 2, and a smaller factor spreads them (and their updates) over
            more of the state's range, which the clone then resolves more precisely.
        update_scale: size of one example's largest update in the state; the cloned SGD's
            learning rate on ``w`` is ``state_scale · update_scale``.
        update_loss_weight: weight of the update loss (measured in units of one example's
            largest update) against the forward and backward losses.
        update_part_weights: weights of the weights' and of the biases' parts of the update
            loss (a lever of Chapter 4's ablation: the clone's bias updates follow
            backpropagation far better than its weight updates).
        update_unit: weights are compared in units of this fraction of one example's largest
            update: a learner batch's mean update is far smaller than one example's, and an
            error that every step repeats (a drift) adds up over thousands of steps.
        value_unit: forward outputs and backward errors are compared in this unit (Smooth L1
            is quadratic below one unit, linear above): a layer sums A connections, so each
            connection must be accurate to well below the size of one layer output.
        param_range: stage ``local`` draws weights and biases from U(-r, r).
        error_range: stage ``local`` draws the incoming error from U(-r, r); the output
            error softmax - onehot lies in (-1, 1).
        hold_fraction: in stage ``local``, the fraction of learner steps with no error at all,
            where the weights must stay exactly as they are (a weight that drifts a little
            every step is far off after a thousand steps).
        steady_fraction: in stage ``local``, the fraction of learners whose input is one value,
            the same for every copy and every step of the rollout, like an MNIST background
            pixel (about 80% of MNIST's 28 × 28 pixels are exactly the background value). Table 1's
            inputs are fresh every step, so a clone trained on them alone never meets a
            constant input; with one, a small error of its hold dynamics compounds instead of
            averaging out (Chapter 4 measures this).
        rollout: learner steps (forward + backward phase each) per cloning example.
        local_batch: sub-LSTMs per Adam step in stage ``local`` (Table 1: 32,768).
        local_copies: stage ``local`` groups its sub-LSTMs into learners of this many copies
            that share a weight and average their states after each step (Appendix D's
            averaging, which the paper uses at meta-test only). 1 (the default): every
            sub-LSTM is its own learner and its own update is matched, as in the paper. With
            more copies only the average update is matched, and per-copy errors that change
            sign with the input cancel on random inputs but add up on MNIST's shared
            background. Chapter 4's ablation: the shipped clone (made with 32) fine-tuned for
            2,000 iterations with 1 copy reached a weight-update cosine of 0.43 on MNIST
            against 0.27 with 32, and 75.3% against 72.6% after 300 learner steps.
        horizon: every stage continues its learners across Adam steps and replaces each by a
            fresh one with probability 1 / horizon per step, so learners live for about
            ``horizon × rollout`` learner steps: the clone learns to stay stable on the states
            it reaches itself over long runs, not only on freshly written ones.
        net_lr: Adam learning rate of the network stages (they fine-tune stage ``local``).
        local_iterations, shallow_iterations, deep_gt_iterations, deep_own_iterations:
            Adam steps of the four curriculum stages (Appendix B; Table 1: 10^6 in all). The
            paper gives no split, so the defaults take the proportions of the ``cpu`` preset's
            curriculum (46,000 / 300 / 100 / 100), the recipe that met Chapter 4's bars:
            990,000 / 6,000 / 2,000 / 2,000. At this scale an iteration of stage ``shallow``
            cost 121 of stage ``local``'s on an H200 (the first GPU window's benchmark, before
            the network stages compiled into one graph) and one of the deep stages about 390
            (projected from its sub-LSTMs), so the earlier split, 500,000 / 200,000 / 150,000 /
            150,000, would have needed about 220 GPU hours, and this one about 5
            (``scripts/campaign.py --status``, which also weighs in the campaign's rate there).
        net_groups: independent learners per Adam step in the network stages.
        net_learner_batch: copies per learner whose states are averaged (Appendix D).
        warmup_max: network stages start from weights after U{0..warmup_max} plain SGD steps
            on the stage's data, so the clone sees the weights it will meet while learning.
        input_side: MNIST images are average-pooled to ``side × side`` inputs (28 = full).
        deep_hidden: hidden neurons of the deep arrangement (Figure 5: 32).
        log_every, checkpoint_every: iterations per loss-curve point / per checkpoint.

    Fidelity (the clone beside autograd on held-out data, recorded per part):
        fidelity_steps: steps of learning beside SGD over which the total change of the
            weights and of the biases is compared (shallow runs); 0 for one step only.

    Meta-test (the clone as a learner, no autograd):
        test_learner_batch: copies averaged after every step (Appendix D: 64).
        test_steps: learner steps per run; eval_every: steps between test-accuracy points.
        eval_examples: test-split examples per accuracy point of the curves.
        final_eval_examples: test-split examples of the accuracy after the last step, the
            number in the results table; 0 (the default): ``eval_examples``, as records made
            before this setting were measured. The ``cpu`` preset draws its curves on 1,000
            images to save time and measures the table on all 10,000 (MNIST's and
            Fashion-MNIST's whole test split): on the first 1,000 alone a mean is off by
            about a point (the binomial standard error at 88% is 1.0 point), more than the
            gaps the table is read for.
        test_seeds: seeds per curve (Figures 5, 7, 8: 6).
    """

    SECTION = "backprop_cloning."
    LIMITS = {
        "lr": NON_NEGATIVE, "net_lr": NON_NEGATIVE,  # 0 leaves V_M as it started (tests use it)
        "update_loss_weight": NON_NEGATIVE, "update_part_weights": NON_NEGATIVE,
        "hold_fraction": FRACTION, "steady_fraction": FRACTION, "warmup_max": NON_NEGATIVE,
        "input_side": DIVIDES_28, "fidelity_steps": NON_NEGATIVE, "final_eval_examples": NON_NEGATIVE,
        # a stage with 0 iterations is skipped (fine-tuning runs only stage ``local``)
        "local_iterations": NON_NEGATIVE, "shallow_iterations": NON_NEGATIVE,
        "deep_gt_iterations": NON_NEGATIVE, "deep_own_iterations": NON_NEGATIVE}


    init_forward_clone: str = ""
    hidden_size: int = 32
    msg_size: int = 8
    micro_ticks: int = 2
    state_scale: float = STATE_SCALE
    update_scale: float = UPDATE_TARGET_SCALE
    update_loss_weight: float = 1.0
    update_part_weights: Tuple[float, float] = (1.0, 1.0)
    update_unit: float = 0.05
    value_unit: float = 0.01
    param_range: float = 1.0
    error_range: float = 1.0
    hold_fraction: float = 0.0
    steady_fraction: float = 0.0
    rollout: int = 4
    lr: float = 5e-3
    local_batch: int = 32_768
    local_copies: int = 1
    horizon: int = 20
    local_iterations: int = 990_000
    shallow_iterations: int = 6_000
    deep_gt_iterations: int = 2_000
    deep_own_iterations: int = 2_000
    net_lr: float = 5e-4
    net_groups: int = 8
    net_learner_batch: int = 8
    warmup_max: int = 1000
    input_side: int = 28
    deep_hidden: int = 32
    log_every: int = 1000
    checkpoint_every: int = 10_000
    fidelity_steps: int = 300
    test_learner_batch: int = 64
    test_steps: int = 2000
    eval_every: int = 100
    eval_examples: int = 10_000
    final_eval_examples: int = 0
    test_seeds: int = 6


@dataclass(frozen=True)
class MetaLearningConfig(_Checked):
    """Chapter 5: meta-learning a learning algorithm from scratch (Section 3.3, Figure 6),
    with a Meta RNN and online Adam as baselines.

    The learner (the VSML network of ``cfg.network``, or the Meta RNN) starts every episode
    from a random state V_L, sees one image per step and, at the next step, the error of its
    prediction. Meta-training minimises the mean cross-entropy over the episode by gradient
    descent on V_M through the unrolled steps.

    Meta-training:
        input_side: images are average-pooled to ``side × side`` inputs (28 = full MNIST).
        episode_length: steps per meta-training episode (Section 4: 200 data points).
        meta_batch: episodes per Adam step on V_M (the paper does not say).
        iterations: Adam steps on V_M.
        lr: Adam learning rate on V_M. At the start the learner's outputs barely depend on
            what it saw, and the meta-gradient is mostly noise; at the ``cpu`` preset 1e-3 had
            not left that plateau after 400 iterations, 1e-2 left it after about 150.
        grad_clip: the meta-gradient's norm is clipped to this (gradients through hundreds of
            recurrent steps occasionally spike). ES estimates are not clipped, as in the
            official code.
        checkpoint_chunk: steps per gradient-checkpointing chunk; only the state at chunk
            boundaries is kept for the backward pass, each chunk is recomputed there. 0 keeps
            every step's activations.
        permute_labels: every episode assigns MNIST's classes to the output units by a fresh
            random permutation, so the mapping from image to output unit must be learned within
            the episode; V_M cannot store it.
        state_clip: cell states are clipped to ±this in meta-training and meta-testing
            (Appendix D clips at 4 at meta-test time; clipping in both keeps them the same learner).
        meta_rnn_hidden: cell size of the Meta RNN baseline (one LSTM; the official code's 128).
        meta_optimizer: ``"gradient"`` (the gradient of the unrolled episodes, backpropagated
            through every step) or ``"es"`` (OpenAI-ES with antithetic sampling,
            :mod:`vsml_lite.metalearn.es`: each of the ``meta_batch`` episodes is one member of
            the population, judged at ``V_M ± σε``; forward only). Either feeds Adam.
        es_sigma: ES noise scale σ (the official code's ``noise_std``, 0.05).
        compare_iterations: iterations of Section 5.10's side-by-side run of the two
            meta-optimisers from the same V_M (a demonstration, not a meta-training budget).
        log_every, checkpoint_every: iterations per loss-curve point / per checkpoint.

    Meta-testing and baselines (the same data streams for every model):
        test_steps: steps per meta-test stream (Figure 6 runs past the training length).
        fashion_stats: standardise Fashion-MNIST with ``"mnist"``'s pixel mean and std, as
            the official code does (a larger shift from the meta-training distribution), or
            with its ``"own"``. The meta-test also runs Fashion-MNIST the other way, as an
            ablation (values: :data:`FASHION_STATS`).
        test_seeds: streams per dataset (Figure 6: 10).
        adam_lrs: learning rates tried for online Adam; the best by accuracy over the first
            200 steps on MNIST *training* streams is used on the test streams. The grid reaches
            0.3 because on 7 × 7 inputs the linear model's best rate was the largest of a grid
            that stopped at 0.03.
        adam_hidden: hidden units of the one-hidden-layer online-Adam baseline.
        lr_search_seeds: training streams per learning rate in that search.
    """

    SECTION = "meta_learning."
    LIMITS = {"input_side": DIVIDES_28, "checkpoint_chunk": NON_NEGATIVE, "lr": NON_NEGATIVE,
              "meta_optimizer": OneOf(META_OPTIMIZERS), "fashion_stats": OneOf(FASHION_STATS)}


    input_side: int = 28
    episode_length: int = 200
    meta_batch: int = 32
    iterations: int = 20_000
    lr: float = 1e-2
    grad_clip: float = 1.0
    checkpoint_chunk: int = 25
    permute_labels: bool = True
    state_clip: float = 4.0
    meta_rnn_hidden: int = 128
    meta_optimizer: str = "gradient"
    es_sigma: float = 0.05
    compare_iterations: int = 40
    log_every: int = 50
    checkpoint_every: int = 500
    test_steps: int = 2000
    fashion_stats: str = "mnist"
    test_seeds: int = 10
    adam_lrs: Tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
    adam_hidden: int = 160
    lr_search_seeds: int = 5


@dataclass(frozen=True)
class ImproveConfig(_Checked):
    """Chapter 6: improving cloned backpropagation with CMA-ES (Appendix B, Figure 9, Table 2).

    Search (Table 2 where it gives a value):
        source_artifact: label of the Chapter 4 artifact to start from
            (``vsml_lite/pretrained/backprop_cloning_<label>``): ``"gpu"``, the shipped one, or
            ``"paper"``, the paper-scale clone a campaign makes (Table 2 improves a clone made
            at the paper's scale).
        source_clone: which clone of the Chapter 4 artifact to start from: ``"random"`` (cloned
            on random data only, as in Figure 9) or ``"curriculum"``.
        sigma0: CMA-ES initial step size (Table 2: initial noise std 0.1).
        generations: CMA-ES iterations (Table 2: 200).
        inner_steps: learner steps per objective evaluation (Table 2: 10^4).
        learner_batch: copies per learner, averaged after every step (Table 2: 64).
        population: candidates per generation; 0 is CMA-ES's default ``4 + ⌊3 ln D⌋`` (Table 2
            gives none; for the clone's D = 6,800 meta variables that is 30).
        population_chunk: candidates per batched (vmap) run on a GPU, as many as fit; on the CPU
            candidates run one by one (faster there) and chunks only deal work to processes.
        diagonal: CMA-ES with a diagonal covariance (sep-CMA-ES, Ros & Hansen 2008). The full
            covariance of D = 6,800 meta variables is a 6,800 × 6,800 matrix (370 MB, plus its
            eigendecomposition every few generations; a checkpoint of the full state measured
            916 MB); the diagonal one is D numbers, and it adapts faster in high dimension.
        input_side: MNIST images are average-pooled to ``side × side`` inputs (28 = full).

    Meta-test (Figure 9: the clone, the improved clone and SGD on the same streams):
        test_steps, eval_every, eval_examples: as in Chapter 4's meta-test.
        test_seeds: learners per curve (Figure 9: 60).
        early_steps: "early in learning": the claims compare the mean training loss over the
            first this many steps.
    """

    SECTION = "improve."
    LIMITS = {"source_clone": OneOf(("random", "curriculum")), "input_side": DIVIDES_28,
              "population": Range(2, also=(0,))}  # CMA-ES needs two candidates; 0 = its default


    source_artifact: str = "gpu"
    source_clone: str = "random"
    sigma0: float = 0.1
    generations: int = 200
    inner_steps: int = 10_000
    learner_batch: int = 64
    population: int = 0
    population_chunk: int = 8
    diagonal: bool = True
    input_side: int = 28
    test_steps: int = 2000
    eval_every: int = 100
    eval_examples: int = 10_000
    test_seeds: int = 60
    early_steps: int = 100


#: Values of ``Config.dtype``; of ``Config.compile`` (see :mod:`vsml_lite.compiled`); of
#: ``Config.device``.
DTYPES = ("float32", "float64")
@dataclass(frozen=True)
class FastWeightsConfig(_Checked):
    """Chapter 2: learning rules as VS Meta RNNs (Section 3, Eqs. 5-12).

    The equality check (explicit network against its VS Meta RNN construction):
        equality_steps: steps of the random stream both run.
        equality_eta: learning rate η of the named rules there (and in the imitation table).
        equality_inputs, equality_outputs: the layer's A and B.

    The imitation table (can a tick of each kind learn a rule's one-step update?):
        imitation_side: A = B of the layer. imitation_iterations, imitation_batch,
        imitation_lr: Adam steps, samples per step and learning rate, per (kind, rule).

    The learned rules on online regression (:mod:`vsml_lite.fastweights.learned`):
        inputs, outputs: A and B of the regression (targets ``x W*``).
        episode_length: examples per episode, one per step.
        meta_batch: episodes per Adam step on V_M. iterations: Adam steps. lr: its rate.
        log_every: iterations per loss-curve point.
        rule_hidden: hidden units of the learned rule f_θ.
        vs_state: state size N of the meta-learned VS Meta RNN. vs_ticks: its ticks per step.
        vs_gates: its gate activations (F, I, G); an LSTM's by default.
        vs_init_std: scale of its random V_M.
        eta_grid: learning rates tried for the delta rule (best on meta-training episodes).
        test_episodes: fresh episodes every learner is scored on.

    The explorer: explorer_inputs, explorer_outputs, explorer_steps.
    """

    SECTION = "fast_weights."
    LIMITS = {"vs_gates": OneOf(("identity", "sigmoid", "tanh")), "vs_ticks": Range(1, 8)}

    equality_steps: int = 200
    equality_eta: float = 0.1
    equality_inputs: int = 4
    equality_outputs: int = 3
    imitation_side: int = 3
    imitation_iterations: int = 600
    imitation_batch: int = 256
    imitation_lr: float = 0.01
    inputs: int = 4
    outputs: int = 2
    episode_length: int = 30
    meta_batch: int = 64
    iterations: int = 1000
    lr: float = 0.01
    log_every: int = 50
    rule_hidden: int = 16
    vs_state: int = 8
    vs_ticks: int = 2
    vs_gates: Tuple[str, ...] = ("sigmoid", "sigmoid", "tanh")
    vs_init_std: float = 1.0
    eta_grid: Tuple[float, ...] = (0.03, 0.1, 0.2, 0.3, 0.5)
    test_episodes: int = 512
    explorer_inputs: int = 4
    explorer_outputs: int = 3
    explorer_steps: int = 30


COMPILE_SETTINGS = ("auto", "off", "default", "reduce-overhead")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class Config(_Checked):
    """The complete configuration of one run. Frozen: derive variants with :meth:`override`.

    Attributes:
        preset: name of the preset this config came from.
        seed: seed for every random generator of the run (see :func:`vsml_lite.seed_everything`).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:k]"``.
        dtype: ``"float32"`` (default) or ``"float64"``.
        compile: how the training steps run (:mod:`vsml_lite.compiled`): ``"auto"`` (compiled
            with CUDA graphs on a GPU, eager on the CPU, where the fused kernel is faster),
            ``"off"``, ``"default"`` or ``"reduce-overhead"`` (``torch.compile`` modes).
            Where a run executes, not what it computes: a checkpoint resumes under any setting.
        data: :class:`DataConfig`.
        eq4: :class:`Eq4Config` (Chapter 1).
        fast_weights: :class:`FastWeightsConfig` (Chapter 2).
        network: :class:`NetworkConfig` (the VSML network, Chapters 3-6).
        forward_cloning: :class:`ForwardCloningConfig` (Chapter 3).
        backprop_cloning: :class:`BackpropCloningConfig` (Chapter 4).
        meta_learning: :class:`MetaLearningConfig` (Chapter 5).
        improve: :class:`ImproveConfig` (Chapter 6).
    """

    preset: str = DEFAULT_PRESET
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    compile: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    eq4: Eq4Config = field(default_factory=Eq4Config)
    fast_weights: FastWeightsConfig = field(default_factory=FastWeightsConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    forward_cloning: ForwardCloningConfig = field(default_factory=ForwardCloningConfig)
    backprop_cloning: BackpropCloningConfig = field(default_factory=BackpropCloningConfig)
    meta_learning: MetaLearningConfig = field(default_factory=MetaLearningConfig)
    improve: ImproveConfig = field(default_factory=ImproveConfig)

    LIMITS = {"seed": NON_NEGATIVE, "dtype": OneOf(DTYPES), "compile": OneOf(COMPILE_SETTINGS)}

    def __post_init__(self) -> None:
        check_section(self)
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise ValueError(f"config device={self.device!r}: needs 'auto', 'cpu', 'cuda' or 'cuda:<index>'")

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict of every setting (stored inside checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return _build(cls, d, prefix="")

    def override(self, changes: Mapping[str, Any]) -> "Config":
        """Return a copy with ``changes`` applied; keys are ``"field"`` or ``"section.field"``.

        Example:
            >>> get_config("smoke").override({"seed": 1, "eq4.trials": 2}).eq4.trials
            2
        """
        top: Dict[str, Any] = {}
        sections: Dict[str, Dict[str, Any]] = {}
        for key, value in changes.items():
            section, _, name = key.rpartition(".")
            if not section:
                _check_field(Config, key, key)
                top[key] = value
                continue
            if "." in section:
                raise ValueError(f"config key {key!r} is nested too deeply; use 'section.field'")
            _check_field(Config, section, key)
            if not dataclasses.is_dataclass(getattr(self, section)):
                raise ValueError(f"config key {key!r}: {section!r} is not a section")
            _check_field(type(getattr(self, section)), name, key)
            sections.setdefault(section, {})[name] = value
        # Each section is rebuilt once with all its changes, so its checks see the final values.
        for section, fields_ in sections.items():
            top[section] = dataclasses.replace(top.get(section, getattr(self, section)), **fields_)
        return dataclasses.replace(self, **top)


def _check_field(cls: type, name: str, key: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    if name not in names:
        raise ValueError(f"unknown config key {key!r}; {cls.__name__} has: {', '.join(names)}")


def _build(cls: type, d: Mapping[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        if key not in fields:
            raise ValueError(
                f"unknown config key {prefix + key!r}; {cls.__name__} has: {', '.join(fields)}"
            )
        section_cls = fields[key].default_factory  # a section's dataclass, else MISSING
        if dataclasses.is_dataclass(section_cls) and isinstance(value, Mapping):
            value = _build(section_cls, value, prefix=f"{prefix}{key}.")
        if isinstance(value, list) and isinstance(fields[key].default, tuple):
            value = tuple(value)  # JSON has no tuples
        kwargs[key] = value
    return cls(**kwargs)
