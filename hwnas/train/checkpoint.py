"""Supernet checkpoints: plain state_dicts plus JSON, never pickles.

A checkpoint folder holds:

* ``supernet.pt``: the supernet's ``state_dict`` (float32 while training; the finished
  checkpoint may be stored in float16 and is loaded back as float32);
* ``optimizer.pt``: the optimizer's ``state_dict``, only while training can still resume;
* ``meta.json``: ``space`` (``space.config()``), ``dataset`` (spec and summary), ``train``
  (configuration and resume state: step, wall time), ``accuracy`` (measured top-1 of the
  largest, smallest and median subnets) and anything later phases add;
* ``accuracy_samples.json`` and ``accuracy_predictor.json``: measured subnets and the fitted
  predictor (``hwnas.predict.accuracy``).

Everything is read with ``torch.load(..., weights_only=True)`` and written atomically.
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from hwnas._io import atomic_write_bytes, atomic_write_json, read_json
from hwnas.errors import DataError

__all__ = ["LoadedSupernet", "save_state", "load_state", "write_meta", "read_meta",
           "check_checkpoint_dir", "checkpoint_space", "CHECKPOINT_FILES",
           "load_supernet", "load_published", "as_loaded", "checkpoint_dataset", "extract_subnet", "evaluate_subnet",
           "SUPERNET_FILE", "OPTIMIZER_FILE", "META_FILE"]

SUPERNET_FILE, OPTIMIZER_FILE, META_FILE = "supernet.pt", "optimizer.pt", "meta.json"


class LoadedSupernet(NamedTuple):
    space: object
    supernet: nn.Module
    meta: dict


def save_state(path: str | Path, state: dict, half: bool = False) -> Path:
    """``torch.save`` a state_dict atomically; ``half`` stores float tensors as float16."""
    if half:
        state = {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v
                 for k, v in state.items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_state(path: str | Path) -> dict:
    """A state_dict saved by ``save_state`` (float16 tensors come back as float32).

    Only tensors and plain containers are read (``weights_only``); a file that holds other
    objects is refused, and never unpickled."""
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():     # torch warns about what it then refuses anyway
            warnings.simplefilter("ignore")
            state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"checkpoint file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"checkpoint file {path} is a folder") from None
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):       # weights_only met a class, not a tensor
            raise DataError(f"{path} is not a valid state_dict: it holds objects other than "
                            "tensors, which hwnas never unpickles") from None
        raise DataError(f"{path} is not a valid state_dict (a corrupt, truncated or "
                        "non-torch file)") from None
    except Exception:  # noqa: BLE001  (torch raises many types for corrupt or truncated files)
        raise DataError(f"{path} is not a valid state_dict (a corrupt, truncated or "
                        "non-torch file)") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise DataError(f"{path} is not a valid state_dict (not a mapping of names to tensors)")
    return {k: v.float() if torch.is_tensor(v) and v.dtype == torch.float16 else v
            for k, v in state.items()}


#: what a checkpoint folder may hold (the files training, finishing and measuring write)
CHECKPOINT_FILES = (SUPERNET_FILE, OPTIMIZER_FILE, META_FILE, "accuracy_samples.json",
                    "accuracy_heldout.json", "accuracy_heldout_val.json",
                    "accuracy_predictor.json")


def check_checkpoint_dir(out: str | Path) -> Path:
    """Refuse ``out`` as a folder to train into unless it is new, empty, a supernet checkpoint
    (a ``meta.json`` of one), or holds only files a checkpoint holds: a user's other files are
    never written over or removed."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"checkpoint folder {out} is a file; choose a folder")
    if not out.is_dir():
        return out
    try:
        meta = read_meta(out)
    except DataError:
        meta = None
    if isinstance(meta, dict) and ("train" in meta or "space" in meta):
        return out
    other = sorted(p.name for p in out.iterdir()
                   if p.name not in CHECKPOINT_FILES and not p.name.startswith("."))
    if other:
        raise DataError(f"folder {out} exists and is not a supernet checkpoint (it holds "
                        f"{other[0]}{' and more' if len(other) > 1 else ''}); choose another "
                        "folder")
    return out


def write_meta(ckpt_dir: str | Path, meta: dict) -> Path:
    return atomic_write_json(Path(ckpt_dir) / META_FILE, meta)


def read_meta(ckpt_dir: str | Path) -> dict:
    path = Path(ckpt_dir) / META_FILE
    meta = read_json(path, "supernet checkpoint metadata", DataError)
    if not isinstance(meta, dict):
        raise DataError(f"corrupt supernet checkpoint metadata {path}: not a JSON object")
    return meta


def load_supernet(ckpt_dir: str | Path | None = None) -> LoadedSupernet:
    """``(space, supernet, meta)`` from a checkpoint folder or shipped name (None: the default
    space's shipped checkpoint), or from a file of a published format that a space's plugin
    reads (``load_published``); the supernet, built by its space's plugin, is in eval mode and
    ``meta["path"]`` names the folder or file."""
    from hwnas._data import checkpoint_dir, is_checkpoint_file
    from hwnas.spaces import default_checkpoint, space_plugin

    if is_checkpoint_file(ckpt_dir):
        return load_published(ckpt_dir)
    ckpt_dir = checkpoint_dir(default_checkpoint() if ckpt_dir is None else ckpt_dir)
    meta = read_meta(ckpt_dir)
    space = checkpoint_space(ckpt_dir, meta)
    net = space_plugin(space).build_supernet(space)
    try:
        net.load_state_dict(load_state(Path(ckpt_dir) / SUPERNET_FILE))
    except RuntimeError as exc:
        raise DataError(f"{Path(ckpt_dir) / SUPERNET_FILE} does not match its space: "
                        f"{str(exc).splitlines()[0]}") from None
    return LoadedSupernet(space, net.eval(), {**meta, "path": str(ckpt_dir)})


def load_published(path: str | Path) -> LoadedSupernet:
    """A supernet file of a published format (Once-for-All's ``{"state_dict": ...}``), read
    with ``weights_only``; its space plugin recognises the format and the configuration its
    shapes show. ``meta`` names the format, configuration and weights, and has no dataset:
    nothing here to recalibrate BN on or to measure accuracy with."""
    from hwnas.spaces import checkpoint_format

    where = str(path)
    state = load_state(path)
    plugin, fmt = checkpoint_format(state, where)
    space, net, config = fmt.load(plugin, state, where)
    meta = {"space": space.config(), "configuration": config, "format": fmt.name,
            "path": where, "weights": f"{fmt.label} {where}"}
    return LoadedSupernet(space, net, meta)


def checkpoint_space(ckpt_dir: str | Path, meta: dict | None = None):
    """The search space a checkpoint was trained for (its ``meta.json``'s ``space``), or the
    configuration a published file's shapes show (the file is loaded, and so checked, whole)."""
    from hwnas._data import is_checkpoint_file
    from hwnas.errors import HwnasError
    from hwnas.spaces import space_from_config

    if meta is None and is_checkpoint_file(ckpt_dir):     # checked whole: every verb refuses alike
        return load_supernet(ckpt_dir).space
    meta = read_meta(ckpt_dir) if meta is None else meta
    path = Path(ckpt_dir) / META_FILE
    if not isinstance(meta.get("space"), dict):
        raise DataError(f"{path}: no 'space' object (the space configuration it was trained for)")
    try:
        return space_from_config(meta["space"])
    except HwnasError as exc:
        raise DataError(f"{path}: field 'space': {exc}") from None


@lru_cache(maxsize=2)
def _cached_dataset(spec: str, val_fraction: float, pad_to: int | None, seed: int):
    from hwnas.train.data import load_dataset

    return load_dataset(spec, val_fraction=val_fraction, pad_to=pad_to, seed=seed)


def checkpoint_dataset(meta: dict):
    """The dataset the checkpoint was trained on, loaded as it was (cached)."""
    d = meta.get("dataset")
    if not isinstance(d, dict) or not isinstance(d.get("spec"), str):
        raise DataError(f"checkpoint metadata of {meta.get('path', 'the checkpoint')} names no "
                        "dataset spec (field 'dataset.spec')")
    args = (d.get("val_fraction", 1 / 12), d.get("pad_to"), d.get("seed", 0))
    if not all(a is None or isinstance(a, (int, float)) for a in args):
        raise DataError(f"checkpoint metadata of {meta.get('path', 'the checkpoint')}: "
                        "'dataset' holds a val_fraction, pad_to or seed that is not a number")
    return _cached_dataset(d["spec"], *args)


def as_loaded(ckpt) -> LoadedSupernet:
    """``ckpt`` as a ``LoadedSupernet``: loaded from a folder or name, or passed through."""
    if ckpt is None or isinstance(ckpt, (str, Path)):
        return load_supernet(ckpt)
    return LoadedSupernet(*ckpt)


def extract_subnet(ckpt, arch, calib_batches: int = 4, batch_size: int = 256,
                   dataset=None) -> nn.Module:
    """The plain ``space.build(arch)`` network with inherited weights and BN recalibrated on
    ``calib_batches`` batches of training images; in eval mode. ``ckpt`` is a folder or the
    result of ``load_supernet``."""
    from hwnas.train.bn import recalibrate_bn

    space, supernet, meta = as_loaded(ckpt)
    if isinstance(arch, str):
        arch = space.parse(arch)
    sub = supernet.get_active_subnet(arch).to(memory_format=torch.channels_last)
    data = dataset if dataset is not None else checkpoint_dataset(meta)
    return recalibrate_bn(sub, data.x_train, arch.r, batch_size, calib_batches)


def evaluate_subnet(ckpt, arch, split: str = "val", calib_batches: int = 4,
                    dataset=None, limit: int | None = None) -> float:
    """Top-1 accuracy of ``arch`` with inherited weights (BN recalibrated) on ``split``."""
    from hwnas.train.evaluate import accuracy

    loaded = as_loaded(ckpt)
    if isinstance(arch, str):
        arch = loaded.space.parse(arch)
    data = dataset if dataset is not None else checkpoint_dataset(loaded.meta)
    if split not in ("val", "test", "train"):
        raise DataError(f"unknown split '{split}'; choose val, test or train")
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    if limit:
        x, y = x[:limit], y[:limit]
    sub = extract_subnet(loaded, arch, calib_batches, dataset=data)
    return accuracy(sub, x, y, arch.r)
