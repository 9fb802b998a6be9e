"""Make the Chapter 2 artifact: a sub-LSTM cloned to compute tanh(x)·w + b (Eq. 13).

    python scripts/train_forward_cloning.py --preset cpu            # ~2 min on 2 CPU cores
    python scripts/train_forward_cloning.py --preset paper          # Table 1; needs a GPU

Writes vsml_lite/pretrained/forward_cloning_<preset>.{pt,json} (weights; config, seed,
preset, code version, metrics, loss curve). Training checkpoints to <out>.ckpt; an
interrupted run (Ctrl-C, SIGTERM) resumes from there when started again with the same
arguments. The checkpoint is removed once the artifact is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import vsml_lite as vl
from vsml_lite import cloning


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="smoke, cpu or paper (default: $VSML_PRESET or cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="artifact path without suffix "
                        "(default: vsml_lite/pretrained/forward_cloning_<preset>)")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    args = parser.parse_args(argv)

    cfg = vl.get_config(args.preset, seed=args.seed, device=args.device)
    out = Path(args.out) if args.out else vl.pretrained_path(cloning.KIND, cfg.preset)
    if args.fresh:
        out.with_suffix(".ckpt").unlink(missing_ok=True)
    f = cfg.forward_cloning
    print(f"forward cloning, preset {cfg.preset}: {f.iterations:,} iterations of {f.batch_size:,} "
          f"examples, cell size {f.hidden_size}, lr {f.lr}, device {vl.get_device(cfg.device)}")
    path = cloning.train_and_save(cfg, out)
    record = vl.load_artifact(path)
    m = record.meta["metrics"]
    print(f"wrote {path.with_suffix('.pt')} and .json ({m['train_seconds']} s of training)")
    print(vl.viz.markdown_table([
        {"sub-LSTM": name, "mean |error|": m[name]["mean_abs_error"], "max |error|": m[name]["max_abs_error"],
         "mean |target|": m[name]["mean_abs_target"]} for name in ("untrained", "trained")], ".4f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
