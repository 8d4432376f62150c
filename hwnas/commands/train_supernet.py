"""``hwnas train-supernet``: train the OFA-MBv3 supernet on a real dataset, then measure it.

Phases, each resumable (rerun the same command after an interruption):

1. training with the sandwich rule (``hwnas.train.trainer``), checkpointed every few steps;
2. finishing: the weights are stored in float16 (loaded back as float32) and the optimizer
   state is dropped;
3. top-1 on the test split of the largest, smallest and median subnets (inherited weights,
   BN recalibrated);
4. accuracy of ``--acc-samples`` random subnets on the validation split, and of
   ``--acc-heldout`` other ones on the whole test split; then the accuracy predictor, fitted on
   the first and scored on the second (``accuracy_predictor.json``); then those held-out subnets
   on the validation split too, the quantity the predictor is fitted to, and it is scored on
   that as well (``accuracy_heldout_val.json``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from hwnas.commands._common import space_help
from hwnas.errors import DataError
from hwnas.spaces import DEFAULT_SPACE, get_space, space_plugin

__all__ = ["register", "run", "default_resolutions"]

log = logging.getLogger("hwnas.train")


def default_resolutions(image_size: int) -> list[int]:
    """The image size and up to three sizes 4, 8 and 12 pixels smaller (at least 8)."""
    return sorted({image_size - d for d in (0, 4, 8, 12) if image_size - d >= 8})


def register(sub) -> None:
    p = sub.add_parser("train-supernet", help="train a space's weight-sharing supernet and its "
                                              "accuracy predictor on a real dataset")
    p.add_argument("--space", help=space_help("space with a supernet"))
    p.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist (default), digits, a .npz file or an ImageFolder folder")
    p.add_argument("--out", required=True, help="checkpoint folder (resumed when it exists)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training split")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--resolutions", default=None,
                   help="comma-separated input sizes (default: the image size and 4/8/12 px less)")
    p.add_argument("--width-mult", type=float, default=None,
                   help="width multiplier (default: the space's)")
    p.add_argument("--pad-to", type=int, default=None, help="zero-pad images to this size")
    p.add_argument("--ckpt-every", type=int, default=25, help="steps between checkpoints")
    p.add_argument("--acc-samples", type=int, default=200,
                   help="random subnets measured to fit the accuracy predictor (0: skip); "
                        "rerun on a finished checkpoint with more to add subnets and refit")
    p.add_argument("--val-limit", type=int, default=2000,
                   help="validation images used per measured subnet")
    p.add_argument("--acc-heldout", type=int, default=100,
                   help="further random subnets measured on the whole test split to score the "
                        "predictor (0: score it on the last quarter of --acc-samples instead)")
    p.add_argument("--acc-model", choices=("gp", "ridge"), default="gp",
                   help="accuracy predictor: ARD Gaussian process (default) or ridge")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=1,
                   help="processes (one thread each) that measure subnets in parallel")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--restart", action="store_true", help="discard an existing checkpoint")
    p.set_defaults(func=run)


def _resolutions(args) -> list[int] | None:
    if not args.resolutions:
        return None
    try:
        return [int(v) for v in args.resolutions.split(",")]
    except ValueError:
        raise DataError(f"--resolutions must be comma-separated integers, got "
                        f"'{args.resolutions}'") from None


def _space(args, data=None):
    """The space to train (checked without a dataset first: its class count and channels
    come from the data)."""
    res = _resolutions(args)
    name = args.space or DEFAULT_SPACE
    space_plugin(name).check_supernet()       # a space without one is refused first
    width = {} if args.width_mult is None else {"width_mult": args.width_mult}
    if data is None:
        return get_space(name, **width, **({"resolutions": res} if res else {}))
    return get_space(name, **width, resolutions=res or default_resolutions(data.image_size),
                     num_classes=data.num_classes, in_chans=data.in_chans)


def _check(args):
    """Every option in range, the output folder usable: before any file is removed, the
    dataset is read or a step is taken."""
    from hwnas._checks import check_int
    from hwnas.train.checkpoint import check_checkpoint_dir
    from hwnas.train.data import check_dataset_options
    from hwnas.train.measure import check_finish_options
    from hwnas.train.trainer import TrainConfig

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      ckpt_every=args.ckpt_every, seed=args.seed)
    check_finish_options(acc_samples=args.acc_samples, val_limit=args.val_limit, seed=args.seed,
                         workers=args.workers, acc_heldout=args.acc_heldout,
                         acc_model=args.acc_model)
    check_int(args.threads, "--threads", 1, 1024, DataError)
    check_dataset_options(pad_to=args.pad_to, seed=args.seed)
    _space(args)
    check_checkpoint_dir(args.out)
    return cfg


def run(args) -> int:
    from hwnas.train.distributed import init_distributed

    ddp = init_distributed()        # under torchrun: this process is one rank (gloo, CPU)
    try:
        return _run(args, ddp)
    finally:
        ddp.close()


def _run(args, ddp) -> int:
    import torch

    from hwnas.train.checkpoint import CHECKPOINT_FILES
    from hwnas.train.data import load_dataset
    from hwnas.train.trainer import check_resume, run_meta, train_supernet

    cfg = _check(args)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.restart and ddp.is_main:
        for f in CHECKPOINT_FILES:
            (out / f).unlink(missing_ok=True)
    ddp.barrier()                   # every rank sees the same checkpoint folder from here on
    data = load_dataset(args.data, pad_to=args.pad_to, seed=args.seed)
    space = _space(args, data)
    dmeta = {"spec": args.data, "pad_to": args.pad_to, "seed": args.seed,
             "val_fraction": 1 / 12, **data.summary()}
    check_resume(out, run_meta(space, cfg, dmeta))     # another run there is never overwritten
    log.info("dataset %s: %s; space %s", data.name, data.sizes(), space.config())
    net, meta = train_supernet(space, data, out, cfg, dmeta, ddp)
    ddp.barrier()
    if not ddp.is_main:             # rank 0 finishes the checkpoint and reports
        return 0
    from hwnas.train.measure import finish_checkpoint

    meta = finish_checkpoint(out, net, meta, data, acc_samples=args.acc_samples,
                             val_limit=args.val_limit, seed=args.seed, workers=args.workers,
                             acc_heldout=args.acc_heldout, acc_model=args.acc_model)
    print(json.dumps({"checkpoint": str(out), "dataset": data.name,
                      "train_wall_s": meta["train"]["wall_s"], **meta.get("accuracy", {}),
                      "predictor": meta.get("accuracy_predictor", {})}, indent=1))
    return 0
