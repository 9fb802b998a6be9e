#!/usr/bin/env bash
# Chapter 4's ablation of cloning levers (issue 13): each row fine-tunes the shipped curriculum
# clone with scripts/finetune_backprop_clone.py and prints its fidelity per part (one step and
# 300 steps beside SGD) and a short shallow MNIST run beside SGD (2 seeds, 300 steps).
#
#   bash scripts/ablate_backprop_clone.sh [ROW ...]    # default: every row, one after another
#
# Rows (the control: 2,000 more iterations of stage `local` at batch 2,048, lr 5e-4):
#   before       the shipped clone as it is (a 1-iteration fine-tune; read its [before] lines)
#   control      the control
#   parts41      the control, the update loss weighing the weights' part 4:1 against the biases'
#   copies4      the control with 4 copies per learner in stage `local` (the shipped clone: 32)
#   copies1      the control with 1 copy per learner
#   shallow      200 iterations of stage `shallow` (MNIST) instead of `local`
#   shallow41    the same, weights' part 4:1
# One core each: about 4 minutes of cloning for a `local` row and 13 for a `shallow` row on
# this project's CPU, plus about 4 minutes of evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
common="backprop_cloning.local_batch=2048 backprop_cloning.local_iterations=2000 backprop_cloning.lr=5e-4"
run() {
    local name=$1; shift
    echo "=== $name: $*"
    $PYTHON scripts/finetune_backprop_clone.py --clone curriculum --steps 300 --seeds 2 "$@"
}
row() {
    case $1 in
        before)    run before --set $common backprop_cloning.local_iterations=1 ;;
        control)   run control --no-before --set $common ;;
        parts41)   run parts41 --no-before --set $common "backprop_cloning.update_part_weights=(4.0,1.0)" ;;
        copies4)   run copies4 --no-before --set $common backprop_cloning.local_copies=4 ;;
        copies1)   run copies1 --no-before --set $common backprop_cloning.local_copies=1 ;;
        shallow)   run shallow --no-before --set backprop_cloning.local_iterations=0 backprop_cloning.shallow_iterations=200 ;;
        shallow41) run shallow41 --no-before --set backprop_cloning.local_iterations=0 backprop_cloning.shallow_iterations=200 \
                       "backprop_cloning.update_part_weights=(4.0,1.0)" ;;
        *) echo "unknown row '$1'; rows: before control parts41 copies4 copies1 shallow shallow41" >&2; exit 2 ;;
    esac
}
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(before control parts41 copies4 copies1 shallow shallow41)
for r in "${rows[@]}"; do row "$r"; done
