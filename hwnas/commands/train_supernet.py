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

from hwnas import api
from hwnas._checks import check_int
from hwnas.api.training import default_resolutions
from hwnas.commands._common import space_help
from hwnas.errors import DataError

__all__ = ["register", "run", "default_resolutions"]


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


def run(args) -> int:
    check_int(args.threads, "--threads", 1, 1024, DataError)
    summary = api.train_supernet(args.out, args.space, data=args.data, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr,
                                 resolutions=_resolutions(args), width_mult=args.width_mult,
                                 pad_to=args.pad_to, ckpt_every=args.ckpt_every,
                                 acc_samples=args.acc_samples, val_limit=args.val_limit,
                                 acc_heldout=args.acc_heldout, acc_model=args.acc_model,
                                 threads=args.threads, workers=args.workers, seed=args.seed,
                                 restart=args.restart)
    if summary is not None:         # rank 0 finishes the checkpoint and reports
        print(json.dumps(summary, indent=1))
    return 0
