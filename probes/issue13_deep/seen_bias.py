"""Issue 13 probe: how much of the clone's bias drift the network can see
(probes/issue13_deep/README.md, "The bias drift the network sees").

Chapter 4.5 measures the clone's total bias change over 300 shallow steps beside SGD's: about
14 times as large, at cosine 0.07. But each connection holds its own bias ``b_ab`` and the
output neuron sees only their sum (Eq. 13), and the softmax ignores a shift of all ten logits.
``bp.seen_biases`` keeps only what the output depends on. Per layer, for the clone and SGD
learning side by side from the same weights on the same batches (``bp.accumulated_comparison``,
test split, one learner of 8 copies as in the chapter):

- per connection: |clone's Δb| / |SGD's| and their cosine (the chapter's numbers, per layer),
- seen: the same for ``bp.seen_biases`` of the changes,
- unseen share: the fraction of the clone's |Δb|² that no output depends on.

    VSML_DATA=... python probes/issue13_deep/seen_bias.py           # shipped clone; about 5 minutes, one core
    VSML_DATA=... python probes/issue13_deep/seen_bias.py --vm campaign/cpu_seed1/vm_cloned.pt
"""
import argparse

import torch

import vsml_lite as vl
from vsml_lite import backprop as bp

from _clone import shipped_or

LEARNERS, COPIES = 1, 8  # as Chapter 4.5's 300-step comparison


def per_layer(flat: torch.Tensor, sizes, groups):
    """Split a flat per-connection bias change (``bp.accumulated_comparison``) into ``[G, A, B]`` per layer."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return [t.reshape(groups, A, B) for t, (A, B) in zip(torch.split(flat, [groups * A * B for A, B in pairs]), pairs)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vm", default=None, help="a V_M state dict instead of the shipped curriculum clone")
    parser.add_argument("--steps", nargs="+", type=int, default=[300, 1000])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"], choices=vl.DATASET_NAMES)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, lstm = shipped_or(args.vm)
    print(f"V_M: {args.vm or 'shipped curriculum clone'}; learner seed {cfg.seed}, {LEARNERS} learner x {COPIES} copies")
    print("| data | network | steps | layer | per connection: x SGD's, cosine | seen: x SGD's, cosine | unseen share |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        test = bp.load_split(cfg, dataset, train=False)
        for arch in bp.ARRANGEMENTS:
            sizes = bp.arrangement(cfg, arch)
            for steps in args.steps:
                change = bp.accumulated_comparison(lstm, cfg, test, sizes, steps, learners=LEARNERS,
                                                   copies=COPIES, seed=cfg.seed)
                clone, sgd = (per_layer(t, sizes, LEARNERS) for t in change["bias change"])
                # bp.seen_biases of the whole network, split back into its layers ([G·B] each)
                seen_clone, seen_sgd = (torch.split(bp.seen_biases(layers), [LEARNERS * B for B in sizes[1:]])
                                        for layers in (clone, sgd))
                for l, (c, s, sc, ss) in enumerate(zip(clone, sgd, seen_clone, seen_sgd)):
                    last = l == len(clone) - 1
                    unseen = 1 - (sc.norm() ** 2 / c.shape[1]) / c.norm() ** 2
                    print(f"| {dataset} | {arch} | {steps} | {l}{' (logits)' if last else ''} | "
                          f"{(c.norm() / s.norm()).item():.2f}, {bp.cosine(c, s):.2f} | "
                          f"{(sc.norm() / ss.norm()).item():.2f}, {bp.cosine(sc, ss):.2f} | {unseen.item():.3f} |",
                          flush=True)


if __name__ == "__main__":
    main()
