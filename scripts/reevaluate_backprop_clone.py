"""Meta-test the clones of a Chapter 4 artifact again, with today's evaluation code, without
cloning again: the clones' V_M and cloning curves stay as they are; fidelity, learning curves
and the accuracy table are measured anew (``bp.reevaluate_backprop_clone``). The earlier
evaluation stays in the record (``metrics.earlier_evaluation``).

    python scripts/reevaluate_backprop_clone.py --set final_eval_examples=10000 \\
        --out vsml_lite/pretrained/backprop_cloning_cpu   # the shipped clone, in place

Only the meta-test's settings may change (``bp.META_TEST_SETTINGS``, without the
``backprop_cloning.`` prefix). Without ``--out`` the artifact goes to
$VSML_ARTIFACTS/backprop_cloning_<label> (the source's label), never over the shipped one.
Resumable: an interrupted run (Ctrl-C, SIGTERM) continues from <out>.eval.ckpt when started
again with the same arguments. For the shipped clone (``cpu`` preset) the six runs took
6,990 s on one core beside other work (its record's ``metrics.eval_runs``: a shallow run
960-1,077 s, a deep run 1,884-1,997 s), so the run is made to span sessions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import vsml_lite as vl
from vsml_lite import backprop as bp

from _cli import parse_set


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", default=str(vl.shipped_path(bp.KIND)),
                        help="the artifact whose clones to meta-test (default: the shipped one)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help=f"meta-test settings to change: {', '.join(bp.META_TEST_SETTINGS)}")
    parser.add_argument("--device", default=None, help="default: the record's device setting")
    parser.add_argument("--out", default=None, help="artifact path without suffix (default: $VSML_ARTIFACTS/"
                        f"{bp.KIND}_<label of --artifact>)")
    parser.add_argument("--allow-dirty", action="store_true", help="record from uncommitted code (refused "
                        "otherwise; the recorded code version then ends in -dirty)")
    args = parser.parse_args(argv)

    vl.artifacts.require_clean_tree(args.allow_dirty, f"a re-evaluated {bp.KIND} artifact")
    vl.device.use_free_cores()
    source = Path(args.artifact)
    label = source.name.removesuffix(".pt").removesuffix(".json").removeprefix(f"{bp.KIND}_")
    out = Path(args.out) if args.out else vl.artifacts.live_path(bp.KIND, label)
    try:
        path = bp.reevaluate_backprop_clone(source, out, changes=parse_set(args.set), device=args.device)
    except ValueError as bad:  # a setting that is not the meta-test's, or a value out of range
        raise SystemExit(f"error: {bad}") from None
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the run in progress left a snapshot
        print(f"stopped ({stop}); the same command resumes from {out.with_suffix('.eval.ckpt')}", file=sys.stderr)
        return 130
    m = vl.load_artifact(path).meta["metrics"]
    print(f"wrote {path.with_suffix('.pt')} and .json (meta-testing {bp.meta_test_time(m)})")
    print(vl.viz.markdown_table([{c: r[c] for c in bp.ACCURACY_COLUMNS} for r in m["accuracy"]]))
    print("earlier evaluation:")
    print(vl.viz.markdown_table([{c: r[c] for c in bp.ACCURACY_COLUMNS if c in r}
                                 for r in m["earlier_evaluation"]["accuracy"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
