"""Make the Chapter 5 artifact: a VSML network and a Meta RNN meta-trained from scratch on
MNIST (Section 3.3), meta-tested with online Adam on the same streams (Figure 6).

    python scripts/train_meta_learning.py --preset cpu       # 7 x 7 inputs, under an hour on 2 cores
    python scripts/train_meta_learning.py --preset paper     # 28 x 28 inputs; needs a GPU
    python scripts/train_meta_learning.py --preset cpu \\
        --set meta_learning.iterations=500                  # any config field, recorded
    torchrun --nproc_per_node 4 scripts/train_meta_learning.py --preset paper   # episodes over 4 processes

Writes $VSML_ARTIFACTS/meta_learning_<label>.{pt,json} (or --out PATH) (label: --label, else the preset):
both learners' V_M, the meta-test curves, and a JSON record (config, seed, preset, code
version, meta-training time and peak memory, online Adam's learning-rate search, the results
table and the three claims of Figure 6). Meta-training checkpoints to <out>.<model>.ckpt; an
interrupted run (Ctrl-C, SIGTERM) resumes when started again with the same arguments.
--reevaluate keeps the learners of an existing artifact and redoes only the meta-test, the
baselines and the memory probe (e.g. after widening the learning-rate grid of online Adam);
--add-model MODEL (with --reevaluate) first meta-trains a model the artifact lacks, with the
artifact's settings, e.g. the paper's fixed-label Meta RNN beside older learners:

    python scripts/train_meta_learning.py --preset cpu --reevaluate --add-model meta_rnn_fixed \
        --out vsml_lite/pretrained/meta_learning_cpu
Under torchrun every process unrolls its share of each batch of episodes and the
meta-gradients are summed (gloo on CPUs, NCCL on GPUs); rank 0 evaluates and writes.
"""

from __future__ import annotations

import sys

import vsml_lite as vl
from vsml_lite import metalearn as ml

from _cli import artifact_parser, config_and_out


def main(argv=None) -> int:
    parser = artifact_parser(__doc__, ml.KIND, "meta_learning.iterations=500")
    parser.add_argument("--reevaluate", action="store_true",
                        help="keep the meta-trained learners of the existing artifact and run only the "
                             "meta-test, baselines and memory probe again with this config")
    parser.add_argument("--add-model", action="append", default=[], choices=ml.MODELS,
                        help="with --reevaluate: meta-train this model (absent from the artifact) first")
    args = parser.parse_args(argv)
    if args.add_model and not args.reevaluate:
        parser.error("--add-model adds to an existing artifact: use it with --reevaluate")
    with vl.distributed.process_group_from_env() as (rank, world):
        return run(args, rank, world)


def run(args, rank: int, world: int) -> int:
    cfg, out = config_and_out(args, ml.KIND)
    if args.reevaluate and world > 1:
        raise SystemExit("--reevaluate runs in one process; start it without torchrun")
    if args.fresh and rank == 0:
        for model in ml.MODELS:
            out.with_suffix(f".{model}.ckpt").unlink(missing_ok=True)
    m = cfg.meta_learning
    print(f"meta-learning from scratch, preset {cfg.preset}: {m.input_side}x{m.input_side} inputs, "
          f"{m.iterations} iterations of {m.meta_batch} episodes x {m.episode_length} steps, "
          f"device {vl.get_device(cfg.device)}, {world} process(es)")
    path = ml.reevaluate(cfg, out, train=args.add_model) if args.reevaluate else ml.train_and_save(cfg, out)
    if path is None:  # a helper process of torchrun: rank 0 reports
        return 0
    meta = vl.load_artifact(path).meta["metrics"]
    for model, r in meta["meta_training"].items():
        print(f"{model}: {r['seconds']} s meta-training, peak memory {r['peak_memory_mb']} MB, "
              f"|V_M| = {r['V_M']:,}, |V_L| = {r['V_L']:,}")
    print(f"meta-gradient memory (one batch, fresh process): {meta['memory']}")
    print(vl.viz.markdown_table(ml.public_rows(meta["results"])))
    print(vl.claims.summary(vl.claims.from_dicts(meta["claims"])))
    print(f"wrote {path.with_suffix('.pt')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
