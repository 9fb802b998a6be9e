"""Issue 13 probe: how one cloned connection answers inputs larger than those it was cloned on
(probes/issue13_deep/README.md, "Inputs beyond the cloned range").

After 1,000 steps of deep MNIST the seed-1 clone's hidden layer inputs have std 10.2 and reach
56 (late_seed1.log; SGD's: 1.6 and 5.3), where stage local clones on inputs of std
``cfg.data.random_std`` (2.0). Does the sub-LSTM still compute Eq. 13 and its backward pass
out there? One connection alone (a [1, 1] network, one copy, as ``bp.update_response``), from
weight ``w`` and bias 0, takes a forward phase on input ``x`` and a backward phase with error
``e``; it is compared with what backpropagation computes:

- forward output ``w·tanh(x)`` (bias 0),
- error sent down ``e·w·(1 - tanh(x)²)``,
- weight change ``-η·e·tanh(x)`` and bias change ``-η·e`` (in units of ``-η·e``: tanh x and 1).

Printed per band of |x|: the mean absolute gap of each, in the units of the exact value's
largest magnitude over all inputs (so 0.1 is a tenth of the quantity's range).

    VSML_DATA=... python probes/issue13_deep/input_range.py                # the shipped clone
    VSML_DATA=... python probes/issue13_deep/input_range.py --vm campaign/cpu_seed1/vm_cloned.pt
    VSML_DATA=... python probes/issue13_deep/input_range.py --weights -3 -1.5 1.5 3   # beyond |w| < 1
"""
import argparse

import torch

from vsml_lite import backprop as bp

from _clone import shipped_or

XS = torch.linspace(-16, 16, 129)  # steps of 0.25, out to the seed-1 hidden layer's std × 1.6
BANDS = ((0, 2), (2, 4), (4, 8), (8, 16.01))  # |x|: stage local's std is 2.0
WEIGHTS = (-0.6, -0.2, 0.2, 0.6)  # within stage local's |w| < 1
ERRORS = (-0.5, -0.1, 0.1, 0.5)  # as bp.update_response


@torch.no_grad()
def respond(lstm, cfg, weights=WEIGHTS):
    """Every (w, e, x) at once: the connection's forward output, the error it sends down, and its
    weight and bias change, beside backpropagation's. Each ``[W, E, X]``."""
    net = bp.make_learner(lstm, cfg, [1, 1])
    scale, eta = cfg.backprop_cloning.state_scale, bp.learning_rate(cfg)
    w, e, x = torch.meshgrid(torch.tensor(weights), torch.tensor(ERRORS), XS, indexing="ij")
    n = w.numel()
    w0 = w.reshape(n, 1, 1)
    state = bp.state_from_weights(net, [(w0, torch.zeros_like(w0))], 1, scale)
    state, inputs, y = net.forward_phase(state, x.reshape(n, 1))
    state, errors = net.backward_phase(state, inputs, e.reshape(n, 1))
    (w1, b1), = bp.read_weights(state, n, scale)
    t = torch.tanh(x)
    clone = {"forward": y.reshape(w.shape), "backward": errors[0].reshape(w.shape),
             "weight": (w1.reshape(w.shape) - w) / (-eta * e), "bias": b1.reshape(w.shape) / (-eta * e)}
    exact = {"forward": w * t, "backward": e * w * (1 - t ** 2), "weight": t, "bias": torch.ones_like(t)}
    return clone, exact


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vm", default=None, help="a V_M state dict instead of the shipped curriculum clone")
    parser.add_argument("--weights", nargs="+", type=float, default=list(WEIGHTS),
                        help="the connection's starting weights (stage local's: |w| < param_range)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, lstm = shipped_or(args.vm)
    # a --vm file holds no config: these are the shipped clone's settings, which it may not share
    print(f"V_M: {args.vm or 'shipped curriculum clone'}; the shipped clone's stage local: input std "
          f"{cfg.data.random_std}, |w| < {cfg.backprop_cloning.param_range}; state clip "
          f"{cfg.network.meta_test_state_clip}")
    clone, exact = respond(lstm, cfg, args.weights)
    print(f"starting weights {args.weights}")
    print("mean |clone - exact| / max |exact|, by band of |x|:")
    print("| quantity | " + " | ".join(f"{lo:g} ≤ |x| < {hi:g}" for lo, hi in BANDS) + " |")
    print("|---|" + "---|" * len(BANDS))
    for part in clone:
        gap = (clone[part] - exact[part]).abs() / exact[part].abs().max()
        cells = [gap[..., (XS.abs() >= lo) & (XS.abs() < hi)].mean().item() for lo, hi in BANDS]
        print(f"| {part} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
