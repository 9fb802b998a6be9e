"""Make the Chapter 3 artifact: a sub-LSTM cloned to compute tanh(x)·w + b (Eq. 13).

    python scripts/train_forward_cloning.py --preset cpu            # ~2 min on 2 CPU cores
    python scripts/train_forward_cloning.py --preset paper          # Table 1; needs a GPU

Writes $VSML_ARTIFACTS/forward_cloning_<preset>.{pt,json} (weights; config, seed, preset,
code version, metrics, loss curve), or where --out says (--out
vsml_lite/pretrained/forward_cloning_cpu remakes the shipped one). Training checkpoints to <out>.ckpt; an
interrupted run (Ctrl-C, SIGTERM) resumes from there when started again with the same
arguments. The checkpoint is removed once the artifact is written.
"""

from __future__ import annotations

import sys

import vsml_lite as vl
from vsml_lite import cloning

from _cli import artifact_parser, config_and_out


def main(argv=None) -> int:
    parser = artifact_parser(__doc__, cloning.KIND, "forward_cloning.iterations=5000")
    args = parser.parse_args(argv)

    cfg, out = config_and_out(args, cloning.KIND)
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
