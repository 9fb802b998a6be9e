"""Issue 13 probe: the shipped clone, made on 14 × 14 inputs, meta-tested unchanged on
28 × 28 (probes/issue13_transfer/README.md).

V_M is one sub-LSTM shared by every connection (Eq. 1), so the clone runs on a network of any
size; only the number of connections changes (784 inputs instead of 196). This runs Chapter 4's
meta-test (bp.evaluate_clones: fidelity, the clone and SGD at the clone's rate on the same data
and initial weights, final accuracy on all 10,000 test images) with ``input_side`` set to 28
and nothing else changed but the seeds, the runs named here and accuracy points every 100
steps (the ``cpu`` preset: 50). Resumable: stopped (Ctrl-C,
SIGTERM, --minutes), the same command continues from --cache.

    VSML_DATA=... python probes/issue13_transfer/transfer.py --runs mnist/shallow fashion_mnist/shallow
"""
import argparse
import time

import torch

import vsml_lite as vl
from vsml_lite import backprop as bp


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["mnist/shallow", "fashion_mnist/shallow"],
                        help="DATASET/ARRANGEMENT pairs, run in this order")
    parser.add_argument("--side", type=int, default=28, help="input side of the meta-test")
    parser.add_argument("--seeds", type=int, default=2, help="learner seeds per run (the chapter's table: 6)")
    parser.add_argument("--cache", default="probes/issue13_transfer/eval28.ckpt")
    parser.add_argument("--minutes", type=float, default=None, help="stop (resumably) after this long")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, lstms = bp.load_backprop_clone(vl.load_artifact(vl.shipped_path(bp.KIND)))
    cfg = cfg.override({"backprop_cloning.input_side": args.side, "backprop_cloning.test_seeds": args.seeds,
                        "backprop_cloning.eval_every": 100})
    runs = []
    for r in args.runs:
        dataset, _, arch = r.partition("/")
        if dataset not in vl.DATASET_NAMES or arch not in bp.ARRANGEMENTS:
            parser.error(f"--runs {r!r}: expected DATASET/ARRANGEMENT with DATASET one of "
                         f"{', '.join(vl.DATASET_NAMES)} and ARRANGEMENT {' or '.join(bp.ARRANGEMENTS)}")
        runs.append(("curriculum", dataset, arch))
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else None
    try:
        done = bp.evaluate_clones(cfg, lstms, cache=args.cache, progress=False, evaluations=runs, deadline=deadline)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the run in progress left a snapshot
        raise SystemExit(f"stopped ({stop}); the same command resumes from {args.cache}") from None
    p = cfg.backprop_cloning
    print(f"shipped clone at {args.side} x {args.side}: {p.test_steps} steps, {args.seeds} seeds, "
          f"eta = {bp.learning_rate(cfg):.3f}, {bp.final_test_images(cfg)} test images")
    for key, r in done.items():
        c, s = (r["curves"][w]["final_accuracy"] for w in ("clone", "sgd"))
        curve = [round(float(v), 3) for v in r["curves"]["clone"]["test_accuracy"].mean(0)]
        fid = {k: round(v, 3) for k, v in r["fidelity"].items() if isinstance(v, float)}
        print(f"{key}: clone {c.mean():.4f} (seeds {[round(float(v), 4) for v in c]}), SGD {s.mean():.4f}, "
              f"{r['seconds']:.0f} s\n  clone curve (first {p.eval_examples} images): {curve}\n  fidelity {fid}")


if __name__ == "__main__":
    main()
