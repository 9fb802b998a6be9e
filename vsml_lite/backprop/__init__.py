"""Learning algorithm cloning, part 2: backpropagation in the forward dynamics (Section 3.2,
Eq. 14, Appendices B and D, Table 1). Chapter 4 of the book.

Every sub-LSTM ``(a, b)`` of a dense VSML layer holds a weight ``w_ab`` and a bias ``b_ab`` in
its cell state (slots :data:`~vsml_lite.cloning.WEIGHT_SLOT` / ``BIAS_SLOT``, divided by
``state_scale``, Appendix C) and is optimised to do, purely by running forward, what one connection of a
``tanh`` network does under backpropagation:

* **forward phase** (input ``x_a`` in its forward message, no error): send
  ``y = tanh(x_a) · w_ab + b_ab`` forward; the layer sums the messages over ``a``, so output
  neuron ``b`` receives ``Σ_a tanh(x_a) w_ab + b_ab``;
* **backward phase** (the same ``x_a`` still in its forward message, the error ``e_b`` in the
  backward message of Eq. 14's ``U`` term): send ``e' = e_b · w_ab · (1 - tanh²(x_a))`` backward
  (the layer sums over ``b``: the chain rule) and change its own state so that
  ``w_ab ← w_ab - η · e_b · tanh(x_a)`` and ``b_ab ← b_ab - η · e_b`` (η = 0.02, see
  :func:`learning_rate`).

A learner made of such layers (Chapter 3's :class:`~vsml_lite.network.VSMLNetwork` in two
phases, built by :func:`make_learner`) learns with no gradient computed anywhere: it runs the forward phase, compares its output with the label
(``e = softmax(y) - onehot``), runs the backward phase, and averages its states over a learner
batch of 64 copies (Appendix D). The same network trained by autograd-SGD
(:func:`mlp_sgd_step`, same parameterisation, initial weights, data order and learning rate) is
the ground truth the clone is trained towards and compared with.

Cloning follows Appendix B's curriculum of four stages (:mod:`.curriculum`): single sub-LSTMs on
random data, then one-layer and two-layer learners on MNIST.

The package's modules, in reading order: :mod:`.ground_truth` (the tanh network and autograd),
:mod:`.learner` (the cloned learner), :mod:`.curriculum` (cloning, Appendix B),
:mod:`.probes` (fidelity and holding), :mod:`.experiment` (meta-test and artifact). Everything
is importable from ``vsml_lite.backprop`` directly.
"""


from .curriculum import (
    STAGE_CASES,
    STAGES,
    BackpropCloningTask,
    CloneTrainResult,
    iteration_work,
    rollout_losses,
    sample_stage,
    stage_costs,
    stage_groups,
    stage_schedule,
    stage_sizes,
    train_backprop_cloning,
    work_done,
)
from .experiment import (
    ACCURACY_COLUMNS,
    ARRANGEMENTS,
    CLONES,
    EVALUATIONS,
    KIND,
    META_TEST_SETTINGS,
    PAPER_ACCURACY,
    accuracy_table,
    arrangement,
    clone_layout,
    evaluate_clones,
    final_accuracy,
    final_summary,
    final_test_images,
    learning_curves,
    load_backprop_clone,
    load_clone_state,
    load_split,
    meta_test_time,
    reevaluate_backprop_clone,
    run_key,
    save_backprop_clone,
    sgd_accuracy,
    train_and_save,
)
from .ground_truth import (
    Weights,
    errors_and_grads,
    formula_sgd_step,
    init_weights,
    mlp_backprop,
    mlp_forward,
    mlp_sgd_step,
)
from .learner import (
    CLONE_LAYOUT,
    assert_no_autograd,
    learning_rate,
    make_learner,
    new_clone_lstm,
    predict,
    read_weights,
    state_from_weights,
    upgrade_clone_state,
)
from .probes import (
    PARTS,
    accumulated_comparison,
    accumulated_fidelity,
    background_value,
    cosine,
    fidelity,
    hold_drift,
    one_step_comparison,
    seen_biases,
    update_response,
)
