"""The command line that every artifact-making script shares: preset, seed, device, ``--set``
overrides, label, output path and ``--fresh``. One parser so that the scripts cannot drift.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Tuple

import vsml_lite as vl


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


def artifact_parser(description: str, kind: str, set_example: str) -> argparse.ArgumentParser:
    """A parser with the shared options of a script that writes the artifact ``kind``;
    scripts add their own options to it."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="smoke, cpu or paper (default: $VSML_PRESET or cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help=f"override config fields, e.g. {set_example}")
    parser.add_argument("--label", default=None, help="artifact name suffix (default: the preset); "
                        "name runs made with --set overrides, e.g. --label gpu")
    parser.add_argument("--out", default=None, help="artifact path without suffix "
                        f"(default: vsml_lite/pretrained/{kind}_<label>)")
    parser.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    return parser


def config_and_out(args: argparse.Namespace, kind: str) -> Tuple[vl.Config, Path]:
    """The run's config (preset, seed, device, ``--set``) and its artifact path. Also lowers
    torch's threads to the cores other processes leave free (:func:`vsml_lite.device.use_free_cores`)."""
    vl.device.use_free_cores()
    cfg = vl.get_config(args.preset, seed=args.seed, device=args.device).override(parse_set(args.set))
    out = Path(args.out) if args.out else vl.pretrained_path(kind, args.label or cfg.preset)
    return cfg, out
