"""Make the Chapter 6 artifact: cloned backpropagation improved by CMA-ES (Appendix B,
Figure 9, Table 2), starting from the random-data clone of Chapter 4's shipped artifact.

    python scripts/improve_backprop.py --preset cpu          # 7 x 7 inputs, under an hour on one core
    python scripts/improve_backprop.py --preset paper        # Table 2; needs GPUs
    torchrun --nproc_per_node 4 scripts/improve_backprop.py --preset paper   # population over 4 processes

Writes $VSML_ARTIFACTS/improve_backprop_<label>.{pt,json} (or --out PATH) (label: --label, else the
preset): the starting and the improved V_M, the meta-test curves and a JSON record (config,
seed, preset, code version, population size, search history, results table, claims). The
CMA-ES state is checkpointed to <out>.ckpt every generation; an interrupted run resumes when
started again with the same arguments. Under torchrun every process runs the search and rank 0
writes. --search-only FILE stops after the search and writes the improved V_M and the search
history to FILE (the distributed test compares these between launches).
"""

from __future__ import annotations

import sys

import torch

import vsml_lite as vl
from vsml_lite import backprop as bp
from vsml_lite import improve

from _cli import artifact_parser, config_and_out


def main(argv=None) -> int:
    parser = artifact_parser(__doc__, improve.KIND, "improve.generations=50")
    parser.add_argument("--search-only", default=None, metavar="FILE",
                        help="run only the search, without checkpoints, and save its result to FILE")
    args = parser.parse_args(argv)
    with vl.distributed.process_group_from_env() as (rank, world):
        return run(args, rank, world)


def run(args, rank: int, world: int) -> int:
    cfg, out = config_and_out(args, improve.KIND, makes_artifact=not args.search_only)
    i = cfg.improve
    if args.search_only:
        clone_cfg, lstm = improve.load_source_clone(cfg)
        train = bp.load_split(improve.search_config(cfg, clone_cfg), "mnist", train=True)
        result = improve.search(cfg, lstm, clone_cfg, train, checkpoint=None, progress=False)
        if rank == 0:
            torch.save({"mean": result.mean, "history": result.history, "processes": world}, args.search_only)
        return 0
    if args.fresh and rank == 0:
        out.with_suffix(".ckpt").unlink(missing_ok=True)
    if rank == 0:
        print(f"CMA-ES on the {i.source_clone}-data clone, preset {cfg.preset}: {i.generations} generations, "
              f"{i.inner_steps} learner steps of {i.learner_batch} copies, {i.input_side}x{i.input_side} inputs, "
              f"{world} process(es), device {vl.get_device(cfg.device)}")
    path = improve.train_and_save(cfg, out)
    if path is None:
        return 0
    meta = vl.load_artifact(path).meta["metrics"]
    print(f"population {meta['population']} (D = {meta['dimension']:,}); search {meta['search_seconds']} s, "
          f"meta-test {meta['eval_seconds']} s")
    print(vl.viz.markdown_table(improve.public_rows(meta["results"])))
    print(vl.viz.markdown_table(meta["claims"]))
    print(f"wrote {path.with_suffix('.pt')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
