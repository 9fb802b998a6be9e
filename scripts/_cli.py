"""The command line that every artifact-making script shares: preset, seed, device, ``--set``
overrides, label, output path and ``--fresh``. One parser so that the scripts cannot drift.
Also the argument types and the seed statistics that the probe scripts share.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Tuple

import torch

import vsml_lite as vl


def parse_set(items):
    """``["a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}``. Values stay text (one pair of
    surrounding quotes removed): the config converts each by its field's declared type, so
    ``network.position_inputs=false`` is ``False`` and ``meta_learning.iterations=abc`` an error
    that names the field (:mod:`vsml_lite.validate`)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set needs key=value, got {item!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _above_zero(convert, what: str, bound: str):
    """An argparse type that converts with ``convert`` and refuses values not above 0, naming
    ``what`` was expected and the ``bound`` it must meet."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value > 0:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value:g}")
        return value
    return parse


#: A whole number of at least 1 (``--steps 0`` is refused, naming it).
positive_int = _above_zero(int, "a whole number", "at least 1")
#: A number above 0 (a learning rate of 0 or below is refused).
positive_float = _above_zero(float, "a number", "positive")


def seed_std(x: torch.Tensor) -> float:
    """Standard deviation over seeds; 0 for a single seed (torch's would be nan)."""
    return x.std().item() if x.numel() > 1 else 0.0


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
    parser.add_argument("--out", default=None, help="artifact path without suffix (default: "
                        f"$VSML_ARTIFACTS/{kind}_<label>, else ~/.cache/vsml_lite/artifacts/...; the "
                        f"shipped vsml_lite/pretrained/ changes only when --out names it)")
    parser.add_argument("--fresh", action="store_true", help="ignore existing checkpoints")
    parser.add_argument("--allow-dirty", action="store_true", help="make the artifact from uncommitted "
                        "code (refused otherwise; its recorded code version then ends in -dirty)")
    return parser


def config_and_out(args: argparse.Namespace, kind: str, makes_artifact: bool = True) -> Tuple[vl.Config, Path]:
    """The run's config (preset, seed, device, ``--set``) and its artifact path: ``--out``, else
    under ``$VSML_ARTIFACTS`` (:func:`vsml_lite.artifacts.live_path`), never the shipped
    ``vsml_lite/pretrained/`` unless ``--out`` says so. Also lowers
    torch's threads to the cores other processes leave free (:func:`vsml_lite.device.use_free_cores`).
    A run that ``makes_artifact`` is refused on an uncommitted tree unless ``--allow-dirty``."""
    if makes_artifact:
        vl.artifacts.require_clean_tree(args.allow_dirty, f"a {kind} artifact")
    vl.device.use_free_cores()
    try:
        cfg = vl.get_config(args.preset, seed=args.seed, device=args.device).override(parse_set(args.set))
    except ValueError as bad:  # an unknown preset or key, or a value of the wrong type or range
        raise SystemExit(f"error: {bad}") from None
    out = Path(args.out) if args.out else vl.artifacts.live_path(kind, args.label or cfg.preset)
    return cfg, out
