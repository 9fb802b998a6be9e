"""Issue 13 probe: how far the deep learner's logits are from those of the network its own
states encode, before and after the deep-stage fine-tune (probes/issue13_deep/README.md).
One step of bp.one_step_comparison (4 learners x 16 copies after 100 warm-up steps, test
images, seed 1): the plain cosine, the cosine after removing each example's mean logit (a
shift softmax ignores), that mean shift, and how often the predicted classes agree.

    VSML_DATA=... python probes/issue13_deep/forward_offset.py      # the probe's numbers
    VSML_DATA=... python probes/issue13_deep/forward_offset.py --artifact vsml_lite/pretrained/backprop_cloning_cpu \
        --datasets mnist fashion_mnist --archs shallow deep --no-finetune
"""
import argparse

import torch

import vsml_lite as vl
from vsml_lite import backprop as bp

parser = argparse.ArgumentParser()
parser.add_argument("--artifact", default="campaign/cpu_eta005/backprop_cloning_cpu")
parser.add_argument("--datasets", nargs="+", default=["mnist"], choices=list(vl.DATASET_NAMES))
parser.add_argument("--archs", nargs="+", default=["deep"], choices=bp.ARRANGEMENTS)
parser.add_argument("--no-finetune", action="store_true", help="the record's clone only, not vm_deep500.pt")
args = parser.parse_args()
torch.set_num_threads(1)
rec = vl.load_artifact(args.artifact)
cfg, clones = bp.load_backprop_clone(rec)
cfg = cfg.override({"device": "cpu"})
variants = [("record", None)] + ([] if args.no_finetune else [("deep500", "probes/issue13_deep/vm_deep500.pt")])
for dataset in args.datasets:
    test = bp.load_split(cfg, dataset, train=False)
    for arch in args.archs:
        sizes = bp.arrangement(cfg, arch)
        for name, sd in variants:
            lstm = clones["curriculum"]
            if sd:
                lstm = bp.new_clone_lstm(cfg)
                lstm.load_state_dict(torch.load(sd, map_location="cpu"))
            pairs = bp.one_step_comparison(lstm, cfg, test, sizes, seed=1)
            y, g = pairs["forward outputs"]
            y, g = y.reshape(-1, 10), g.reshape(-1, 10)
            print(dataset, arch, name, "cos", round(bp.cosine(y, g), 3),
                  "centred cos", round(bp.cosine(y, g, centred=True), 3),
                  "mean offset", round((y.mean(1) - g.mean(1)).mean().item(), 3),
                  "norms", round(y.norm().item(), 2), round(g.norm().item(), 2),
                  "argmax agree", round((y.argmax(1) == g.argmax(1)).float().mean().item(), 3), flush=True)
