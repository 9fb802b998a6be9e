"""Issue 13 probe: where the shipped clone's deep Fashion-MNIST fidelity goes as it learns
(probes/issue13_deep/README.md, "Where the shipped clone's deep Fashion-MNIST fidelity goes").

After 0, 10, 30 and 100 steps of the clone learning on its own (4 learners x 16 copies, test
images), one fresh batch goes through three forward computations without learning: the
clone from the state it reached (drifted), the clone from a fresh state holding only the
weights read from it (rewritten), and mlp_forward of those weights (exact). Printed per layer:
centred cosines against exact, and the sizes the clone meets (spread of the exact hidden
outputs, the largest |w| and |b|), beside SGD's from the same start on the same batches, and
the cosine of each layer's weights with SGD's (added later, as the --warmups option).
Added after the first run showed rewritten close to exact and drifted not: the hidden layer
with only the connections from mostly blank pixels rewritten (blank: the dataset's background
value, bp.background_value, in more than half of the test images), and with only the others.

    VSML_DATA=... python probes/issue13_deep/collapse.py    # about 6 minutes, one core
    VSML_DATA=... python probes/issue13_deep/collapse.py --vm probes/issue13_deep/vm_steady.pt
    VSML_DATA=... python probes/issue13_deep/collapse.py --warmups 300 1000 --datasets mnist --seeds 0
        # later in learning (campaign/cpu_seed1/README.md): about 11 minutes per clone, one core
"""
import argparse

import torch

import vsml_lite as vl
from vsml_lite import backprop as bp
from vsml_lite.device import make_generator
from vsml_lite.network import LayerState

from _clone import shipped_or

WARMUPS = (0, 10, 30, 100)
SEEDS = (0, 1)
LEARNERS, COPIES = 4, 16  # bp.one_step_comparison's defaults
MOSTLY_BLANK = 0.5  # a pixel is "mostly blank" when more than this fraction of images show the background


@torch.no_grad()
def probe(lstm, cfg, data, sizes, warmup, seed, mostly_blank):
    gen = make_generator(seed)
    learner = bp.make_learner(lstm, cfg, sizes)
    G, n, scale = LEARNERS, COPIES, cfg.backprop_cloning.state_scale
    start = bp.init_weights(sizes, G, gen, "cpu")
    state, sgd = bp.state_from_weights(learner, start, n, scale), start

    def batch():
        idx = torch.randint(len(data), (G, n), generator=gen)
        return data.images[idx], data.labels[idx]

    for _ in range(warmup):
        x, labels = batch()
        state, _ = learner.learn_step(state, x.reshape(G * n, -1), labels.reshape(-1), G)
        sgd, _ = bp.mlp_sgd_step(sgd, x, labels, bp.learning_rate(cfg))
    x, _ = batch()
    weights = bp.read_weights(state, G, scale)
    exact_inputs, exact_y = bp.mlp_forward(weights, x)
    sgd_inputs, _ = bp.mlp_forward(sgd, x)
    _, drift_inputs, drift_y = learner.forward_phase(state, x.reshape(G * n, -1))
    fresh = bp.state_from_weights(learner, weights, n, scale)
    _, new_inputs, new_y = learner.forward_phase(fresh, x.reshape(G * n, -1))
    hid = exact_inputs[1].reshape(G * n, -1)
    row = {"hidden drifted": bp.cosine(drift_inputs[1], hid), "hidden rewritten": bp.cosine(new_inputs[1], hid)}
    rows = mostly_blank[None, :, None, None]  # the first layer's connections from mostly blank pixels
    for name, pick in (("blank rows", rows), ("other rows", ~rows)):
        s, f = state[0], fresh[0]
        mixed = [LayerState(torch.where(pick, f.h, s.h), torch.where(pick, f.c, s.c), s.fwd_in, s.bwd_in), *state[1:]]
        _, mixed_inputs, _ = learner.forward_phase(mixed, x.reshape(G * n, -1))
        row[f"hidden, {name} rewritten"] = bp.cosine(mixed_inputs[1], hid)
    row.update({"logits drifted": bp.cosine(drift_y, exact_y.reshape(G * n, -1), centred=True),
                "logits rewritten": bp.cosine(new_y, exact_y.reshape(G * n, -1), centred=True),
                "hidden std clone/sgd": (hid.std().item(), sgd_inputs[1].std().item()),
                "hidden |max| clone/sgd": (hid.abs().max().item(), sgd_inputs[1].abs().max().item())})
    for l, ((w, b), (sw, sb)) in enumerate(zip(weights, sgd)):
        row[f"L{l} max|w| clone/sgd"] = (w.abs().max().item(), sw.abs().max().item())
        row[f"L{l} max|b| clone/sgd"] = (b.abs().max().item(), sb.abs().max().item())
        row[f"L{l} w cosine with sgd"] = bp.cosine(w, sw)  # same start, same batches
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vm", default=None, help="a V_M state dict (finetune_backprop_clone.py --save) "
                        "instead of the shipped curriculum clone")
    parser.add_argument("--warmups", nargs="+", type=int, default=list(WARMUPS),
                        help="steps of learning before the probe (each from a fresh start)")
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist", "mnist"], choices=vl.DATASET_NAMES)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="learner seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, lstm = shipped_or(args.vm)
    # a --vm file holds no config: these are the shipped clone's settings, which it may not share
    print(f"V_M: {args.vm or 'shipped curriculum clone'}; the shipped clone's stage local: input std "
          f"(random_std) {cfg.data.random_std}, |w|, |b| < {cfg.backprop_cloning.param_range}", flush=True)
    sizes = bp.arrangement(cfg, "deep")
    for dataset in args.datasets:
        test = bp.load_split(cfg, dataset, train=False)
        blank = torch.isclose(test.images, torch.tensor(bp.background_value(dataset)), atol=1e-4)
        mostly_blank = blank.float().mean(0) > MOSTLY_BLANK
        print(f"{dataset}: {int(mostly_blank.sum())} of {len(mostly_blank)} pixels mostly blank "
              f"(background {bp.background_value(dataset):.2f})", flush=True)
        for warmup in args.warmups:
            for seed in args.seeds:
                row = probe(lstm, cfg, test, sizes, warmup, seed, mostly_blank)
                print(f"{dataset} deep, warm-up {warmup}, seed {seed}:",
                      "; ".join(f"{k} " + (f"{v:.3f}" if isinstance(v, float) else "/".join(f"{u:.3f}" for u in v))
                                for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
