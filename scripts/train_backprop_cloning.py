"""Make the Chapter 3 artifact: a sub-LSTM cloned to run backpropagation (Section 3.2, Eq. 14,
Appendix B), evaluated as a learner on MNIST and Fashion-MNIST (Figures 5, 7, 8, 9).

    python scripts/train_backprop_cloning.py --preset cpu     # 14 x 14 inputs, over an hour on 2 cores
    python scripts/train_backprop_cloning.py --preset paper   # Table 1; needs a GPU
    python scripts/train_backprop_cloning.py --preset paper \\
        --set backprop_cloning.local_iterations=20000         # any config field, recorded

Writes vsml_lite/pretrained/backprop_cloning_<label>.{pt,json} (label: --label, else the preset): V_M of the curriculum clone
and of the random-data clone, learning curves, and a JSON record (config, seed, preset, code
version, fidelity against autograd, accuracy table, cloning loss curves). Cloning checkpoints
to <out>.ckpt and the evaluation to <out>.eval.ckpt; an interrupted run (Ctrl-C, SIGTERM)
resumes when started again with the same arguments. Both are removed once the artifact is
written.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import vsml_lite as vl
from vsml_lite import backprop


def parse_set(items):
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (values parsed as Python literals)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="smoke, cpu or paper (default: $VSML_PRESET or cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config fields, e.g. backprop_cloning.test_steps=1000")
    parser.add_argument("--label", default=None, help="artifact name suffix (default: the preset); "
                        "name runs made with --set overrides, e.g. --label gpu")
    parser.add_argument("--out", default=None, help="artifact path without suffix "
                        "(default: vsml_lite/pretrained/backprop_cloning_<label>)")
    parser.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    args = parser.parse_args(argv)

    cfg = vl.get_config(args.preset, seed=args.seed, device=args.device).override(parse_set(args.set))
    out = Path(args.out) if args.out else vl.pretrained_path(backprop.KIND, args.label or cfg.preset)
    if args.fresh:
        for suffix in (".ckpt", ".eval.ckpt"):
            out.with_suffix(suffix).unlink(missing_ok=True)
    p = cfg.backprop_cloning
    print(f"backprop cloning, preset {cfg.preset}: stages {backprop.stage_schedule(cfg)}, "
          f"{p.input_side}x{p.input_side} inputs, cell size {p.hidden_size}, device {vl.get_device(cfg.device)}")
    path = backprop.train_and_save(cfg, out)
    m = vl.load_artifact(path).meta["metrics"]
    print(f"wrote {path.with_suffix('.pt')} and .json ({m['train_seconds']} s cloning, "
          f"{m['eval_seconds']} s meta-testing)")
    print(vl.viz.markdown_table([{c: r[c] for c in backprop.ACCURACY_COLUMNS} for r in m["accuracy"]]))
    print(vl.viz.markdown_table([{"run": k, **v} for k, v in m["fidelity"].items()], ".3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
