"""vsml_lite: a small PyTorch reproduction of Variable Shared Meta Learning.

Kirsch & Schmidhuber, *Meta Learning Backpropagation And Improving It* (NeurIPS 2021).
The package behind the vsml-book; every chapter imports it as ``import vsml_lite as vl``.

Modules:
    config   one typed config (a section per chapter)
    presets  its presets ``smoke``, ``cpu``, ``paper`` (:func:`get_config`)
    device   device, dtype and seed helpers
    vanilla  Eqs. 1-4: Meta RNN, VS Meta RNN, the sparse shared matrix W̃ (Chapter 1)
    fastweights  Eqs. 5-12: learning rules (Hebb, Oja, delta, learned) and the same rules inside a VS Meta RNN (Chapter 2)
    data     MNIST / Fashion-MNIST, online streams, the random stream of Table 1
    network  the VSML network of tiny LSTMs: fast and reference layer ticks (Chapters 3-6)
    fused    the compiled CPU kernel behind the fast layer tick
    cloning  learning algorithm cloning: neural forward computation, Eq. 13 (Chapter 3)
    backprop learning algorithm cloning: backpropagation, Eq. 14; the cloned learner (Chapter 4)
    metalearn meta-learning a learning algorithm from scratch; Meta RNN and online-Adam baselines (Chapter 5)
    improve  CMA-ES on the cloned learner's V_M (Chapter 6)
    training the one resumable training loop every long run goes through
    distributed  several processes on one run (torchrun): meta-gradients, CMA-ES populations
    compiled torch.compile / CUDA graphs for the training steps on a GPU
    campaign the paper-scale runs, carried over many short sessions (scripts/campaign.py)
    artifacts  shipped weights + JSON records, resumable checkpoints
    claims   the paper's claims, each judged at a stated horizon (Chapters 5, 6)
    reproduction  every chapter's result beside the paper's, from the shipped records (Chapter 7)
    validate checks of config values, tensors and file checksums (clear errors for bad input)
    viz      figures and ipywidgets explorers used by the chapters
"""

#: Package version; defined before the submodules are imported (artifacts.py reads it).
__version__ = "0.1.0"

from .config import (
    DEFAULT_PRESET,
    PRESET_ENV_VAR,
    RANDOM_DATA_STD,
    Config,
    DataConfig,
    Eq4Config,
    FastWeightsConfig,
    ForwardCloningConfig,
    MetaLearningConfig,
    NetworkConfig,
)
from .presets import PRESETS, config_diff, get_config
from .data import (
    DATA_ENV_VAR,
    DATASET_NAMES,
    DATASETS,
    INPUT_DIM,
    NORMALIZATION,
    NUM_CLASSES,
    DatasetNotFoundError,
    OnlineStream,
    RandomStream,
    TensorData,
    data_root,
    load_dataset,
)
from .device import get_device, get_dtype, make_generator, seed_everything
from .vanilla import (
    CASE_C,
    CASE_CW,
    CASE_NAMES,
    CASE_W,
    CASE_ZERO,
    b_tilde,
    count_equivalent_meta_rnn_variables,
    count_learned_variables,
    count_meta_variables,
    equivalence_sweep,
    meta_rnn_step,
    vs_meta_rnn_step,
    vs_meta_rnn_step_eq14,
    vs_meta_rnn_step_eq14_reference,
    vs_meta_rnn_step_reference,
    w_tilde,
    w_tilde_6d,
    w_tilde_cases,
)
from .network import (
    LayerState,
    SubLSTM,
    VSMLNetwork,
    average_learner_batch,
    build_network,
    cross_entropy_error,
    dense_ticks,
    dense_ticks_reference,
)
from . import (artifacts, backprop, claims, cloning, compiled, distributed, fastweights, fused, improve, metalearn,
               training, validate, viz)
from . import campaign
from .artifacts import artifact_exists, load_artifact, pretrained_path, retrain_requested, shipped_path


__all__ = [
    "CASE_C",
    "CASE_CW",
    "CASE_NAMES",
    "CASE_W",
    "CASE_ZERO",
    "Config",
    "DATASETS",
    "DATASET_NAMES",
    "DATA_ENV_VAR",
    "DEFAULT_PRESET",
    "DataConfig",
    "DatasetNotFoundError",
    "Eq4Config",
    "FastWeightsConfig",
    "ForwardCloningConfig",
    "INPUT_DIM",
    "LayerState",
    "MetaLearningConfig",
    "NORMALIZATION",
    "NUM_CLASSES",
    "NetworkConfig",
    "OnlineStream",
    "PRESETS",
    "PRESET_ENV_VAR",
    "RANDOM_DATA_STD",
    "RandomStream",
    "SubLSTM",
    "TensorData",
    "VSMLNetwork",
    "artifacts",
    "average_learner_batch",
    "b_tilde",
    "backprop",
    "build_network",
    "campaign",
    "cloning",
    "compiled",
    "distributed",
    "fastweights",
    "config_diff",
    "count_equivalent_meta_rnn_variables",
    "count_learned_variables",
    "count_meta_variables",
    "cross_entropy_error",
    "data_root",
    "dense_ticks",
    "dense_ticks_reference",
    "equivalence_sweep",
    "fused",
    "improve",
    "get_config",
    "get_device",
    "artifact_exists",
    "get_dtype",
    "load_artifact",
    "load_dataset",
    "make_generator",
    "metalearn",
    "meta_rnn_step",
    "pretrained_path",
    "retrain_requested",
    "shipped_path",
    "seed_everything",
    "training",
    "viz",
    "vs_meta_rnn_step",
    "vs_meta_rnn_step_eq14",
    "vs_meta_rnn_step_eq14_reference",
    "vs_meta_rnn_step_reference",
    "w_tilde",
    "w_tilde_6d",
    "w_tilde_cases",
]
