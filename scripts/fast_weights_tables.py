"""Print Chapter 2's tables: the explicit network against its VS Meta RNN construction
(Table 2.4), what additive and gated ticks can learn (Table 2.5) and the learned rules on online
regression (Table 2.6). The same code the chapter runs; nothing is written to disk.

    python scripts/fast_weights_tables.py --preset cpu      # about 2 minutes on one core
    python scripts/fast_weights_tables.py --preset smoke    # seconds
"""

from __future__ import annotations

import argparse
import sys

import torch

import vsml_lite as vl
from vsml_lite import fastweights as fw

from _cli import parse_set


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="smoke, cpu or paper (default: $VSML_PRESET or cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config fields, e.g. fast_weights.iterations=2000")
    args = parser.parse_args(argv)
    try:
        cfg = vl.get_config(args.preset, seed=args.seed).override(parse_set(args.set))
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    c = cfg.fast_weights
    print(f"preset {cfg.preset}, seed {cfg.seed}, code {vl.artifacts.code_version()}\n")

    print(f"Table 2.4: A = {c.equality_inputs}, B = {c.equality_outputs}, {c.equality_steps} steps, "
          f"eta = {c.equality_eta}, sigma = tanh, float64")
    rows = [fw.equality_check(rule, c.equality_eta, c.equality_inputs, c.equality_outputs, c.equality_steps,
                              torch.Generator().manual_seed(cfg.seed), sigma="tanh") for rule in fw.RULES]
    print(vl.viz.markdown_table(rows, ".2g") + "\n")

    print(f"Table 2.5: relative error of the learned one-step update, {c.imitation_iterations} Adam steps")
    gen = torch.Generator().manual_seed(cfg.seed)
    rows = []
    for rule in fw.RULES:
        row = {"rule": rule}
        for kind in fw.learned.IMITATION_KINDS:
            row[kind] = fw.imitate_rule(kind, rule, c, gen)["update_error"]
        rows.append(row)
    print(vl.viz.markdown_table(rows, ".2f") + "\n")

    print(f"Table 2.6: {c.iterations} meta-training iterations of {c.meta_batch} episodes; "
          f"{c.test_episodes} test episodes of {c.episode_length} steps, A = {c.inputs}, B = {c.outputs}")
    result = fw.compare_learners(c, seed=cfg.seed, progress=False)
    print(vl.viz.markdown_table(result["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
