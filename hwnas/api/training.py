"""The supernet journey: train a space's weight-sharing supernet on a real dataset, then measure
it and fit its accuracy predictor."""
from __future__ import annotations

import logging
import os

log = logging.getLogger("hwnas.train")


def default_resolutions(image_size: int) -> list[int]:
    """The image size and up to three sizes 4, 8 and 12 pixels smaller (at least 8)."""
    return sorted({image_size - d for d in (0, 4, 8, 12) if image_size - d >= 8})


def train_supernet(out: str | os.PathLike, space: str | None = None, *,
                   data: str = "fashion-mnist", epochs: float = 1.0, batch_size: int = 128,
                   lr: float = 0.1, resolutions: list[int] | None = None,
                   width_mult: float | None = None, pad_to: int | None = None,
                   ckpt_every: int = 25, acc_samples: int = 200, val_limit: int = 2000,
                   acc_heldout: int = 100, acc_model: str = "gp", threads: int = 2,
                   workers: int = 1, seed: int = 0, restart: bool = False) -> dict | None:
    """Train the supernet of ``space`` (a name; None: the default space) on ``data``
    (``fashion-mnist``, ``digits``, a ``.npz`` file or an ImageFolder folder) into the
    checkpoint folder ``out``, then finish it: float16 weights, top-1 of the largest, smallest
    and median subnets, ``acc_samples`` random subnets on the validation split to fit the
    accuracy predictor (``gp`` or ``ridge``) and ``acc_heldout`` others on the test split to
    score it. Every phase resumes where an interrupted run stopped; ``restart`` discards an
    existing checkpoint first. ``resolutions`` default to the image size and 4, 8 and 12 px
    less. Under torchrun each process is one rank (gloo, CPU).

    Returns the checkpoint's summary (its folder, dataset, training time, accuracies and
    predictor score); None on every rank but the first.
    """
    from hwnas.train.distributed import init_distributed

    ddp = init_distributed()        # under torchrun: this process is one rank (gloo, CPU)
    try:
        cfg = _check(out, space, epochs, batch_size, lr, resolutions, width_mult, pad_to,
                     ckpt_every, acc_samples, val_limit, acc_heldout, acc_model, threads,
                     workers, seed)
        return _train(ddp, cfg, out, space, data, resolutions, width_mult, pad_to, acc_samples,
                      val_limit, acc_heldout, acc_model, threads, workers, seed, restart)
    finally:
        ddp.close()


def _space(name, width_mult, resolutions, data=None):
    """The space to train (checked without a dataset first: its class count and channels
    come from the data)."""
    from hwnas.spaces import DEFAULT_SPACE, get_space, space_plugin

    name = name or DEFAULT_SPACE
    space_plugin(name).check_supernet()       # a space without one is refused first
    width = {} if width_mult is None else {"width_mult": width_mult}
    if data is None:
        return get_space(name, **width, **({"resolutions": resolutions} if resolutions else {}))
    return get_space(name, **width,
                     resolutions=resolutions or default_resolutions(data.image_size),
                     num_classes=data.num_classes, in_chans=data.in_chans)


def _check(out, space, epochs, batch_size, lr, resolutions, width_mult, pad_to, ckpt_every,
           acc_samples, val_limit, acc_heldout, acc_model, threads, workers, seed):
    """Every option in range, the output folder usable: before any file is removed, the
    dataset is read or a step is taken."""
    from hwnas._checks import check_int
    from hwnas.errors import DataError
    from hwnas.train.checkpoint import check_checkpoint_dir
    from hwnas.train.data import check_dataset_options
    from hwnas.train.measure import check_finish_options
    from hwnas.train.trainer import TrainConfig

    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, ckpt_every=ckpt_every,
                      seed=seed)
    check_finish_options(acc_samples=acc_samples, val_limit=val_limit, seed=seed,
                         workers=workers, acc_heldout=acc_heldout, acc_model=acc_model)
    check_int(threads, "torch threads", 1, 1024, DataError)
    check_dataset_options(pad_to=pad_to, seed=seed)
    _space(space, width_mult, resolutions)
    check_checkpoint_dir(out)
    return cfg


def _train(ddp, cfg, out, space, data, resolutions, width_mult, pad_to, acc_samples, val_limit,
           acc_heldout, acc_model, threads, workers, seed, restart) -> dict | None:
    from pathlib import Path

    import torch

    from hwnas.train.checkpoint import CHECKPOINT_FILES
    from hwnas.train.data import load_dataset
    from hwnas.train.trainer import check_resume, run_meta
    from hwnas.train.trainer import train_supernet as _train_supernet

    torch.set_num_threads(threads)
    out = Path(out)
    if restart and ddp.is_main:
        for f in CHECKPOINT_FILES:
            (out / f).unlink(missing_ok=True)
    ddp.barrier()                   # every rank sees the same checkpoint folder from here on
    dataset = load_dataset(data, pad_to=pad_to, seed=seed)
    sp = _space(space, width_mult, resolutions, dataset)
    dmeta = {"spec": data, "pad_to": pad_to, "seed": seed, "val_fraction": 1 / 12,
             **dataset.summary()}
    check_resume(out, run_meta(sp, cfg, dmeta))     # another run there is never overwritten
    log.info("dataset %s: %s; space %s", dataset.name, dataset.sizes(), sp.config())
    net, meta = _train_supernet(sp, dataset, out, cfg, dmeta, ddp)
    ddp.barrier()
    if not ddp.is_main:             # rank 0 finishes the checkpoint and reports
        return None
    from hwnas.train.measure import finish_checkpoint

    meta = finish_checkpoint(out, net, meta, dataset, acc_samples=acc_samples,
                             val_limit=val_limit, seed=seed, workers=workers,
                             acc_heldout=acc_heldout, acc_model=acc_model)
    return {"checkpoint": str(out), "dataset": dataset.name,
            "train_wall_s": meta["train"]["wall_s"], **meta.get("accuracy", {}),
            "predictor": meta.get("accuracy_predictor", {})}
