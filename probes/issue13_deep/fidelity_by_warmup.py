"""Issue 13 probe: one step of the shipped clone beside autograd in the deep arrangement, after
0, 10, 30 and 100 learner steps of warm-up (bp.fidelity's default is 100; 4 learners x 16
copies, test images, seed 0). It asks whether the clone's poor one-step fidelity on deep
Fashion-MNIST (Chapter 4.5) is there from the first step or grows as the learner learns.

    VSML_DATA=... python probes/issue13_deep/fidelity_by_warmup.py     # about 3 minutes, one core
"""
import torch

import vsml_lite as vl
from vsml_lite import backprop as bp

WARMUPS = (0, 10, 30, 100)
torch.set_num_threads(1)
cfg, clones = bp.load_backprop_clone(vl.load_artifact(vl.shipped_path(bp.KIND)))
cfg = cfg.override({"device": "cpu"})
for dataset in ("fashion_mnist", "mnist"):
    test = bp.load_split(cfg, dataset, train=False)
    for warmup in WARMUPS:
        sim = bp.fidelity(clones["curriculum"], cfg, test, bp.arrangement(cfg, "deep"), seed=0, warmup=warmup)
        print(dataset, "deep, warm-up", warmup, "steps, cosines:",
              {part: round(sim[f"{part}_cosine"], 3) for part in ("forward", "backward", "weight", "bias")}, flush=True)
