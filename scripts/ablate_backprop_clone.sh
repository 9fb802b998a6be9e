#!/usr/bin/env bash
# Chapter 4's ablations of cloning levers (issue 13): each row fine-tunes a curriculum clone with
# scripts/finetune_backprop_clone.py and prints its fidelity per part (one step and 300 steps
# beside SGD) and a short shallow MNIST run beside SGD (2 seeds, 300 steps).
#
#   bash scripts/ablate_backprop_clone.sh [ROW ...]    # default: every row, one after another
#
# Table 1 of the chapter ("What made the weights follow"), from the first clone
# (backprop_cloning_gpu, 32 copies per learner in stage `local`). The control: 2,000 more
# iterations of stage `local` at batch 2,048, lr 5e-4:
#   before       the first clone as it is (a 1-iteration fine-tune; read its [before] lines)
#   control      the control
#   parts41      the control, the update loss weighing the weights' part 4:1 against the biases'
#   copies4      the control with 4 copies per learner in stage `local`
#   copies1      the control with 1 copy per learner
#   shallow      200 iterations of stage `shallow` (MNIST) instead of `local`
#   shallow41    the same, weights' part 4:1
# Table 2 ("Holding over many steps"), from the eta = 0.08 clone (shipped until the eta = 0.06 clone
# replaced it; campaign/cpu_eta008/README.md), 300 more
# iterations of stage `shallow` (MNIST, learners of 4 copies, net_lr 5e-4):
#   cpu_before   the eta = 0.08 clone as it is (an evaluation, no fine-tuning)
#   cpu_h100     learners kept for about 400 learner steps instead of 80 (horizon 100, not 20)
#   cpu_b4       the update loss weighing the biases' part 4:1 against the weights'
#   cpu_w0       cpu_b4 with horizon 100 and learners from fresh weights (warmup_max 0): do the
#                first steps slow down because stage `shallow` starts learners after SGD steps?
# One core each: about 4 minutes of cloning for a `local` row, 13 for a `shallow` row of
# Table 1 and 3 for one of Table 2 on this project's CPU, plus about 4 minutes of evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
first=vsml_lite/pretrained/backprop_cloning_gpu
eta008=campaign/cpu_eta008/backprop_cloning_cpu
common="backprop_cloning.local_batch=2048 backprop_cloning.local_iterations=2000 backprop_cloning.lr=5e-4"
mnist="backprop_cloning.local_iterations=0 backprop_cloning.shallow_iterations=300"
run() {
    local name=$1 artifact=$2; shift 2
    echo "=== $name: --artifact $artifact $*"
    $PYTHON scripts/finetune_backprop_clone.py --artifact "$artifact" --clone curriculum --steps 300 --seeds 2 "$@"
}
row() {
    case $1 in
        before)     run before $first --set $common backprop_cloning.local_iterations=1 ;;
        control)    run control $first --no-before --set $common ;;
        parts41)    run parts41 $first --no-before --set $common "backprop_cloning.update_part_weights=(4.0,1.0)" ;;
        copies4)    run copies4 $first --no-before --set $common backprop_cloning.local_copies=4 ;;
        copies1)    run copies1 $first --no-before --set $common backprop_cloning.local_copies=1 ;;
        shallow)    run shallow $first --no-before --set backprop_cloning.local_iterations=0 \
                        backprop_cloning.shallow_iterations=200 ;;
        shallow41)  run shallow41 $first --no-before --set backprop_cloning.local_iterations=0 \
                        backprop_cloning.shallow_iterations=200 "backprop_cloning.update_part_weights=(4.0,1.0)" ;;
        cpu_before) run cpu_before $eta008 --evaluate-only ;;
        cpu_h100)   run cpu_h100 $eta008 --no-before --set $mnist backprop_cloning.horizon=100 ;;
        cpu_b4)     run cpu_b4 $eta008 --no-before --set $mnist "backprop_cloning.update_part_weights=(1.0,4.0)" ;;
        cpu_w0)     run cpu_w0 $eta008 --no-before --set $mnist "backprop_cloning.update_part_weights=(1.0,4.0)" \
                        backprop_cloning.horizon=100 backprop_cloning.warmup_max=0 ;;
        *) echo "unknown row '$1'; rows: before control parts41 copies4 copies1 shallow shallow41" \
                "cpu_before cpu_h100 cpu_b4 cpu_w0" >&2; exit 2 ;;
    esac
}
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(before control parts41 copies4 copies1 shallow shallow41 cpu_before cpu_h100 cpu_b4 cpu_w0)
for r in "${rows[@]}"; do row "$r"; done
