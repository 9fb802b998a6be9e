"""Peak memory and time of one meta-gradient of Chapter 5 (Section 3.3), with and without
gradient checkpointing over time (``vsml_lite.metalearn.unroll``).

Each measurement runs in a fresh process (peak resident memory on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU) and prints the ratio against the first chunk size
given (by default 0: every step's activations kept).

    python scripts/benchmark_meta_memory.py --preset cpu
    python scripts/benchmark_meta_memory.py --preset paper --device cuda --chunks 0 10 25 50
    python scripts/benchmark_meta_memory.py --preset paper --set meta_learning.meta_batch=4
"""

from __future__ import annotations

import argparse
import sys

import vsml_lite as vl
from vsml_lite import metalearn as ml

from _cli import parse_set


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="smoke, cpu or paper (default: $VSML_PRESET or cpu)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default="vsml", choices=ml.MODELS)
    parser.add_argument("--chunks", type=int, nargs="+", default=None,
                        help="checkpoint chunk sizes (0: none); default: 0 and the preset's")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config fields")
    args = parser.parse_args(argv)

    cfg = vl.get_config(args.preset, device=args.device).override(parse_set(args.set))
    m = cfg.meta_learning
    chunks = args.chunks if args.chunks is not None else [0, m.checkpoint_chunk]
    print(f"{args.model}, preset {cfg.preset}: {m.input_side}x{m.input_side} inputs, batch {m.meta_batch} "
          f"episodes x {m.episode_length} steps")
    first = None
    for chunk in chunks:
        r = ml.meta_gradient_memory(cfg, args.model, chunk)
        first = first or r
        ratio = first["peak_mb"] / r["peak_mb"] if r["peak_mb"] > 0 else float("nan")
        print(f"chunk {chunk or 'none':>5}: peak {r['peak_mb']:9.1f} MB, {r['seconds']:7.3f} s on {r['device']}; "
              f"{ratio:5.1f}x less memory and {r['seconds'] / first['seconds']:.2f}x the time of chunk {first['chunk'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
