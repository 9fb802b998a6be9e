"""Meta-learning a learning algorithm from scratch (Section 3.3, Figure 6). Chapter 5 of the book.

A learner is anything with ``initial_state(batch, generator)`` and
``step(state, x, error, state_clip) -> (state, y)``: the VSML network
(:class:`~vsml_lite.network.VSMLNetwork`) or the Meta RNN baseline (:class:`MetaRNN`). An
*episode* runs it online: at step ``t`` it receives the image ``x_t`` and the error
``e_{t-1} = softmax(y_{t-1}) - onehot(label_{t-1})`` of its previous prediction, and predicts
``y_t``. Its state V_L starts at random; V_M is shared by every episode. Meta-training
(Section 3.3) minimises the episode's mean cross-entropy

    L(V_M) = E_episodes [ (1/T) Σ_t CE(y_t, label_t) ]

by Adam on V_M, differentiating through all ``T`` steps. At meta-test time no gradient is
computed anywhere: the learner just runs forward.

Memory: the backward pass through ``T`` steps needs the activations of every step.
:func:`unroll` bounds that with gradient checkpointing over chunks of ``checkpoint_chunk``
steps: only the state at chunk boundaries is kept, and each chunk is recomputed in the
backward pass (``O(T / K + K)`` steps of activations instead of ``O(T)``, at the cost of one
extra forward pass).

Baselines, on exactly the same data streams (:func:`test_streams`): online backpropagation
with Adam on a linear model and on a one-hidden-layer network (:func:`online_backprop`), with
the learning rate chosen on MNIST training streams (:func:`choose_learning_rate`).

The package's modules, in reading order: :mod:`.learners` (the VSML network's counterpart, the
Meta RNN), :mod:`.episodes` (unrolling a learner online), :mod:`.meta_training`, :mod:`.es`
(evolution strategies as the meta-optimiser), :mod:`.baselines` (online Adam), :mod:`.memory`
(the checkpointing probe), :mod:`.experiment` (meta-test, claims, artifact) and
:mod:`.inside` (introspection). Everything is importable from ``vsml_lite.metalearn`` directly.
"""

from . import es
from .baselines import BASELINES, CLAIM_STEPS, choose_learning_rate, claim_steps, online_backprop
from .episodes import (
    cumulative_accuracy,
    flatten_state,
    meta_test,
    sample_episodes,
    scores,
    test_streams,
    unflatten_state,
    unroll,
)
from .experiment import (
    CHANCE_MARGIN,
    CLAIMS,
    KIND,
    LABELS,
    SHORT_LABELS,
    TEST_DATASETS,
    TEST_STREAM_SEED,
    TRAINING_FIELDS,
    check_claims,
    paper_meta_rnn,
    evaluate,
    evaluation_from_record,
    fashion_ablation_key,
    fashion_stats_table,
    other_fashion_stats,
    load_learners,
    public_rows,
    reevaluate,
    results_table,
    save_meta_learning,
    train_and_save,
)
from .inside import template_correlation, trace_episode, unit_specific, weight_like_dimension
from .learners import (
    FIXED_LABEL_MODELS,
    MODEL_SPECS,
    MODELS,
    ModelSpec,
    MetaRNN,
    build_learner,
    feedback,
    feedback_size,
    learned_variable_counts,
    model_spec,
    permutes_labels,
)
from .memory import MMAP_THRESHOLD, meta_gradient_memory, peak_memory_mb
from .meta_training import (
    META_OPTIMIZERS,
    MetaTrainingTask,
    MetaTrainResult,
    compare_meta_optimizers,
    load_split,
    meta_train,
)
