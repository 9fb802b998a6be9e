"""What a perfect clone of SGD could reach: plain SGD on the cloned learner's network at
several learning rates (Chapter 4).

The cloned learner runs SGD at the rate it was cloned with (``bp.learning_rate``:
``state_scale · update_scale``, printed below). A faithful clone reaches at best
what SGD at that rate reaches on the same network, data order and initial weights, so this
script prints that, and the same at other rates, as the reference for the accuracy bars::

    python scripts/sgd_reference.py                      # the shipped clone's scale and rate, 1,000 steps
    python scripts/sgd_reference.py --lrs 0.02 0.1 --steps 600 --seeds 6
    python scripts/sgd_reference.py --lrs 0.03 0.05 0.06 0.07 0.08 0.1 --test-images 10000
    python scripts/sgd_reference.py --preset paper --steps 2000   # the paper preset's campaign clone

Each run is ``bp.sgd_accuracy`` (the SGD side of ``bp.learning_curves``), a few seconds on
one core.
"""

from __future__ import annotations

import argparse
import sys

import vsml_lite as vl
from vsml_lite import backprop as bp

from _cli import positive_float, positive_int, seed_std


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--artifact", default=str(vl.shipped_path(bp.KIND)),
                        help="backprop-cloning artifact whose config sets the network and data (default: shipped)")
    source.add_argument("--preset", default=None, choices=list(vl.PRESETS),
                        help="take the network, data and rate from this preset instead of an artifact (e.g. "
                             "paper: the clone the campaign makes, before it exists)")
    parser.add_argument("--lrs", nargs="+", type=positive_float, default=None,
                        help="SGD learning rates (default: the clone's own rate and 0.02 0.05 0.1 0.2)")
    parser.add_argument("--steps", type=positive_int, default=1000, help="SGD steps (the issue's bar: 1,000)")
    parser.add_argument("--seeds", type=positive_int, default=6)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"], choices=list(vl.DATASET_NAMES))
    parser.add_argument("--archs", nargs="+", default=list(bp.ARRANGEMENTS), choices=bp.ARRANGEMENTS)
    parser.add_argument("--test-images", type=positive_int, default=None,
                        help="test images of the accuracy after the last step (default: the artifact's "
                             "backprop_cloning.final_eval_examples, or its eval_examples where that is 0)")
    args = parser.parse_args(argv)

    vl.device.use_free_cores()
    if args.preset:
        cfg, name = vl.get_config(args.preset), f"the {args.preset} preset"
    else:
        cfg, name = bp.load_backprop_clone(vl.load_artifact(args.artifact))[0], args.artifact
    cfg = cfg.override({"backprop_cloning.test_steps": args.steps,
                        **({"backprop_cloning.final_eval_examples": args.test_images} if args.test_images else {})})
    p = cfg.backprop_cloning
    if args.lrs is None:  # with the clone's own rate: the reference its accuracy bars are read against
        args.lrs = sorted({round(bp.learning_rate(cfg), 6), 0.02, 0.05, 0.1, 0.2})
    print(f"SGD on the network of {name}: {p.input_side}x{p.input_side} inputs, batches of "
          f"{p.test_learner_batch}, {args.steps} steps, test accuracy on {bp.final_test_images(cfg):,} test examples, "
          f"mean ± std over {args.seeds} seeds; the cloned rate is {bp.learning_rate(cfg):g}")
    print(f"{'dataset':<14} {'network':<8} " + " ".join(f"{'lr ' + format(lr, 'g'):>13}" for lr in args.lrs))
    for dataset in args.datasets:
        train, test = bp.load_split(cfg, dataset, True), bp.load_split(cfg, dataset, False)
        if bp.final_test_images(cfg) > len(test):
            raise SystemExit(f"error: --test-images {bp.final_test_images(cfg):,} is more than the {len(test):,} "
                             f"images of the {dataset} test split")
        for arch in args.archs:
            sizes = bp.arrangement(cfg, arch)
            cells = []
            for lr in args.lrs:
                acc = 100 * bp.sgd_accuracy(cfg, train, test, sizes, list(range(args.seeds)), lr)
                cells.append(f"{acc.mean():.1f} ± {seed_std(acc):.1f}")
            print(f"{dataset:<14} {arch:<8} " + " ".join(f"{c:>13}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
