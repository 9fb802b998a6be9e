"""Make the Chapter 4 artifact: a sub-LSTM cloned to run backpropagation (Section 3.2, Eq. 14,
Appendix B), evaluated as a learner on MNIST and Fashion-MNIST (Figures 5, 7, 8, 9).

    python scripts/train_backprop_cloning.py --preset cpu     # 14 x 14 inputs, over an hour on 2 cores
    python scripts/train_backprop_cloning.py --preset paper   # Table 1; needs a GPU
    python scripts/train_backprop_cloning.py --preset paper \\
        --set backprop_cloning.local_iterations=20000         # any config field, recorded

Writes $VSML_ARTIFACTS/backprop_cloning_<label>.{pt,json} (or --out PATH) (label: --label, else the preset): V_M of the curriculum clone
and of the random-data clone, learning curves, and a JSON record (config, seed, preset, code
version, fidelity against autograd, accuracy table, cloning loss curves). Cloning checkpoints
to <out>.ckpt and the evaluation to <out>.eval.ckpt; an interrupted run (Ctrl-C, SIGTERM)
resumes when started again with the same arguments. Both are removed once the artifact is
written.
"""

from __future__ import annotations

import sys

import vsml_lite as vl
from vsml_lite import backprop

from _cli import artifact_parser, config_and_out


def main(argv=None) -> int:
    parser = artifact_parser(__doc__, backprop.KIND, "backprop_cloning.test_steps=1000")
    args = parser.parse_args(argv)

    cfg, out = config_and_out(args, backprop.KIND)
    if args.fresh:
        for suffix in (".ckpt", ".eval.ckpt"):
            out.with_suffix(suffix).unlink(missing_ok=True)
    p = cfg.backprop_cloning
    print(f"backprop cloning, preset {cfg.preset}: stages {backprop.stage_schedule(cfg)}, "
          f"{p.input_side}x{p.input_side} inputs, cell size {p.hidden_size}, device {vl.get_device(cfg.device)}")
    path = backprop.train_and_save(cfg, out)
    m = vl.load_artifact(path).meta["metrics"]
    print(f"wrote {path.with_suffix('.pt')} and .json ({m['train_seconds']} s cloning, "
          f"meta-testing {backprop.meta_test_time(m)})")
    print(vl.viz.markdown_table([{c: r[c] for c in backprop.ACCURACY_COLUMNS} for r in m["accuracy"]]))
    print(vl.viz.markdown_table([{"run": k, **v} for k, v in m["fidelity"].items()], ".3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
