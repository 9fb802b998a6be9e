"""Fast weights and learned learning rules (FWs / LLRs) as VS Meta RNNs: Section 3, Eqs. 5-12.
Chapter 2 of the book.

* :mod:`.rules`: the explicit network, Eqs. 9-11, with named rules (Hebb, Oja, delta, decay)
  and a parameterised rule ``f_θ``;
* :mod:`.vs_rnn`: the same computation inside a layer of sub-RNNs (Eqs. 6, 12, 14), with
  ``V_M`` constructed by hand, and the additive tick (Eq. 3/14) that cannot multiply;
* :mod:`.learned`: meta-learning ``f_θ`` and a VS Meta RNN from random ``V_M`` on an online
  regression task.

Everything is importable from ``vsml_lite.fastweights`` directly.
"""

from .rules import (ACTIVATIONS, RULES, LearnedRule, activation, check_rule, llr_step, neural_forward,
                    rule_update, run_llr)
from .vs_rnn import (FEEDBACK_SLOTS, FORWARD_SLOTS, GATE_ACTIVATIONS, LINEAR_GATES, LSTM_GATES, TICKS_NEEDED,
                     UNIT_NAMES, WEIGHT_UNIT, VSLayer, additive_tick, construct_rule, equality_check, trace_rule,
                     feedback_message, forward_message, gated_tick, initial_state, run_vs, vs_step)
from . import learned
from .learned import compare_learners, effective_weights, imitate_rule, regression_episodes
