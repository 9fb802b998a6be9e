"""Fine-tune a shipped backprop clone (Chapter 4) and see what it changed.

Starts V_M from one of the clones of a backprop-cloning artifact, continues cloning with the
artifact's config plus ``--set`` overrides (by default stage ``local`` only), then prints

* how well the clone holds a weight when the input is the background value of MNIST (and of
  each of ``--datasets``) and no error arrives (``bp.hold_drift``), before and after,
* its fidelity to backpropagation part by part (``bp.fidelity``: one step on MNIST and each of
  ``--datasets``, in the shallow arrangement and each of ``--archs``; weights and biases apart)
  and over 300 steps beside SGD on MNIST (``bp.accumulated_fidelity``), before and after, and
* a shallow run of the clone beside SGD (``bp.learning_curves``) on MNIST (``--datasets``
  adds Fashion-MNIST), before and after.

It is a probe for trying cloning changes on a clone that took GPU time to make; it writes no
artifact (``--save`` keeps the fine-tuned V_M). For example, the steady-input experiment of
Chapter 4::

    python scripts/finetune_backprop_clone.py --clone random --set \\
        backprop_cloning.local_batch=2048 backprop_cloning.local_iterations=3000 \\
        backprop_cloning.lr=5e-4 backprop_cloning.steady_fraction=0.5
"""

from __future__ import annotations

import argparse
import time

import torch

import vsml_lite as vl
from vsml_lite import backprop as bp

from _cli import parse_set, positive_int, seed_std


def report(lstm, cfg, title: str, steps: int, seeds: int, datasets=("mnist",), archs=("shallow",)) -> None:
    """Print the background-value hold, the fidelity per part and a run of ``lstm`` beside SGD
    in each of ``archs`` on each of ``datasets``."""
    for dataset in dict.fromkeys(("mnist", *datasets)):
        d = bp.hold_drift(lstm, cfg, steps=200, every=200, input_value=bp.background_value(dataset))
        ratio = ", ".join(f"{w:+.1f}: {r:.2f}" for w, r in zip(d["weights"].tolist(), d["ratio"][-1].tolist()))
        where = f"{vl.DATASET_NAMES[dataset]}'s background value {bp.background_value(dataset):.2f}"
        print(f"[{title}] weight held / weight at start after 200 error-free steps at {where}: {ratio}")
        print(f"[{title}] bias after those steps (started at 0): "
              + ", ".join(f"{b:+.3f}" for b in d["bias"][-1].tolist()))
    short = cfg.override({"backprop_cloning.test_steps": steps, "backprop_cloning.test_seeds": seeds})
    tests = {dataset: bp.load_split(short, dataset, False) for dataset in dict.fromkeys(("mnist", *datasets))}
    for dataset, test in tests.items():
        for arch in dict.fromkeys(("shallow", *archs)):  # the deep learner's backward errors reach a hidden layer
            one = bp.fidelity(lstm, short, test, bp.arrangement(short, arch), seed=cfg.seed)
            print(f"[{title}] one step beside autograd ({vl.DATASET_NAMES[dataset]} test, {arch}), cosine: forward "
                  f"{one['forward_cosine']:.3f}, backward {one['backward_cosine']:.3f}, weights "
                  f"{one['weight_cosine']:.3f}, biases {one['bias_cosine']:.3f}, both {one['update_cosine']:.3f}")
    sizes = bp.arrangement(short, "shallow")
    total = bp.accumulated_fidelity(lstm, short, tests["mnist"], sizes, 300, learners=1, copies=8, seed=cfg.seed)
    print(f"[{title}] after 300 steps beside SGD: weight change {total['weight_total_ratio']:.2f}x SGD's at cosine "
          f"{total['weight_total_cosine']:.3f}; bias change {total['bias_total_ratio']:.2f}x at cosine "
          f"{total['bias_total_cosine']:.3f}, the part the output sees (bp.seen_biases) "
          f"{total['seen_bias_total_ratio']:.2f}x at cosine {total['seen_bias_total_cosine']:.3f}")
    for arch in archs:
        for dataset in datasets:
            train = bp.load_split(short, dataset, True)
            out = bp.learning_curves(lstm, short, train, tests[dataset], bp.arrangement(short, arch), seeds=list(range(seeds)),
                                     progress=False)
            for who in ("clone", "sgd"):
                acc = out[who]["test_accuracy"]  # [seeds, points]
                last, images = bp.final_accuracy(out, who, short)  # [seeds]
                print(f"[{title}] {dataset} {arch}, {who:5s} test accuracy at steps {out['eval_steps']} "
                      f"({short.backprop_cloning.eval_examples:,} test images): "
                      + " ".join(f"{100 * a:.1f}" for a in acc.mean(0).tolist())
                      + f" (last, on {images:,} test images: {100 * last.mean():.1f} ± {100 * seed_std(last):.1f}% "
                      f"over {seeds} seeds)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", default=str(vl.shipped_path(bp.KIND)),
                        help="backprop-cloning artifact to start from (default: the shipped one)")
    parser.add_argument("--clone", choices=bp.CLONES, default="random",
                        help="which of its clones: the full curriculum or random data only")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides; stages other than 'local' get 0 iterations unless set")
    parser.add_argument("--steps", type=positive_int, default=300, help="learner steps of the shallow runs beside SGD")
    parser.add_argument("--seeds", type=positive_int, default=2, help="seeds of the shallow runs beside SGD")
    parser.add_argument("--datasets", nargs="+", default=["mnist"], choices=list(vl.DATASET_NAMES),
                        help="datasets of the shallow run beside SGD")
    parser.add_argument("--archs", nargs="+", default=["shallow"], choices=bp.ARRANGEMENTS,
                        help="arrangements of the runs beside SGD (deep: 196 -> 32 -> 10 at 14 x 14)")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="no fine-tuning: report on the starting V_M (--init or the artifact's clone) only")
    parser.add_argument("--save", default=None, help="write the fine-tuned V_M (state dict) here")
    parser.add_argument("--init", default=None,
                        help="start from this V_M (a state dict written by --save) instead of the artifact's clone")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file: a long fine-tune stopped (Ctrl-C, SIGTERM) resumes from it")
    parser.add_argument("--no-before", action="store_true", help="skip the report on the clone before fine-tuning")
    args = parser.parse_args()

    vl.device.use_free_cores()
    record = vl.load_artifact(args.artifact)
    made_with, clones = bp.load_backprop_clone(record)
    stages_off = {f"backprop_cloning.{s}_iterations": 0 for s in bp.STAGES if s != "local"}
    cfg = made_with.override({**stages_off, "device": "auto", **parse_set(args.set)})
    source = args.init or f"the {args.clone!r} clone of {args.artifact} (code {record.meta['code_version']})"
    if args.evaluate_only:
        changed = vl.config_diff(made_with.override(parse_set(args.set)), made_with)
        print(f"evaluating {source} with the artifact's config"
              + (f", changed: {changed}" if changed else ""))
    else:
        print(f"fine-tuning {source}; changed settings: {vl.config_diff(cfg, made_with)}")
        # stage local keeps the artifact's iterations unless --set says otherwise: say what will run
        plan = {s: getattr(cfg.backprop_cloning, f"{s}_iterations") for s in bp.STAGES}
        print("stages to run: " + (", ".join(f"{s} {n:,} iterations" for s, n in plan.items() if n) or "none"))
    before = clones[args.clone]
    if args.init:
        before = bp.new_clone_lstm(cfg)
        before.load_state_dict(torch.load(args.init, map_location="cpu"))
    if args.evaluate_only or not args.no_before:
        report(before, cfg, "V_M" if args.evaluate_only else "before", args.steps, args.seeds, args.datasets,
               args.archs)
    if args.evaluate_only:
        return
    started = time.perf_counter()
    result = bp.train_backprop_cloning(cfg, checkpoint=args.checkpoint, init=before.state_dict())
    if not result.finished:
        print(f"stopped before the end; run the same command again to resume from {args.checkpoint}")
        return
    print(f"fine-tuned in {time.perf_counter() - started:.0f} s; last losses: "
          + ", ".join(f"{k} {result.curves[k][-1]:.3f}" for k in ("forward", "backward", "update")))
    if args.save:  # before the report: its runs beside SGD can take an hour, and a stop there lost the V_M
        torch.save(result.lstm.state_dict(), args.save)
        print(f"saved V_M to {args.save}")
    with torch.no_grad():
        report(result.lstm.cpu(), cfg, "after", args.steps, args.seeds, args.datasets, args.archs)


if __name__ == "__main__":
    main()
