"""Advance the campaign of paper-scale runs for a fixed time (see vsml_lite/campaign.py).

    python scripts/campaign.py --minutes 12 --device cuda                 # one GPU window
    nohup python scripts/campaign.py --minutes 240 --device cpu --threads 1 &   # the CPU, in the background
    python scripts/campaign.py --status                                   # where the runs stand
    nohup python scripts/campaign.py --minutes 240 --device cpu --threads 1 \
        --preset cpu --runs backprop_cloning --dir campaign/cpu &        # a cpu-preset run, resumable

Works through forward cloning, backprop cloning, meta-learning and the CMA-ES improvement at
the `paper` preset, each resumed from its checkpoint in campaign/, and stops cleanly before
the window ends. A run that completes writes vsml_lite/pretrained/<kind>_paper.{pt,json}.
Commit campaign/ (and any new artifact) after every session. Ctrl-C / SIGTERM checkpoint
and stop. Run it from a clean checkout: the checkpoints record the code version that ran.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import vsml_lite as vl
from vsml_lite import campaign

from _cli import parse_set


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, help="the session's window in minutes")
    parser.add_argument("--device", default="auto", help="auto (default), cuda or cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 beside other work)")
    parser.add_argument("--compile", default=None, choices=vl.compiled.COMPILE_MODES,
                        help="how the steps run (Config.compile; default auto: compiled on CUDA)")
    parser.add_argument("--runs", nargs="*", default=None, metavar="KIND",
                        help=f"runs to advance, in queue order (default all: {' '.join(campaign.KINDS)})")
    parser.add_argument("--dir", default=str(campaign.DEFAULT_DIRECTORY), help="campaign folder")
    parser.add_argument("--out", default=str(vl.artifacts.PRETRAINED_DIR), help="where finished runs write artifacts")
    parser.add_argument("--preset", default=campaign.PRESET,
                        help="preset of the runs (default paper). `cpu` with --runs and its own --dir "
                             "carries a long cpu-preset run, such as Chapter 4's clone, across sessions "
                             "the same way; smoke is for tests")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help=argparse.SUPPRESS)
    parser.add_argument("--status", action="store_true", help="print where the runs stand and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run uncommitted code (refused otherwise: checkpoints and artifacts record the code)")
    args = parser.parse_args(argv)

    if args.status:
        path = Path(args.dir) / "progress.json"
        if not path.exists():
            print(f"no campaign has run in {args.dir} yet")
            return 0
        record = campaign.refreshed(json.loads(path.read_text()))
    else:
        if args.minutes is None:
            parser.error("--minutes is required (or --status)")
        vl.artifacts.require_clean_tree(args.allow_dirty, "campaign checkpoints and artifacts")
        print(f"campaign: {args.minutes} minutes on {args.device}"
              + (f", {args.threads} thread(s)" if args.threads else "") + f", code {vl.artifacts.code_version()}")
        try:
            overrides = {**parse_set(args.set), **({"compile": args.compile} if args.compile else {})}
            record = campaign.run_campaign(args.minutes, args.device, args.threads, args.dir, args.out, args.runs,
                                           overrides, args.preset, progress=not args.quiet)
        except KeyboardInterrupt as stop:
            print(f"stopped: {stop}; progress is in {Path(args.dir) / 'progress.json'}")
            return 130
    print(vl.viz.markdown_table(campaign.progress_table(record)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
