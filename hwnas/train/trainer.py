"""Supernet training with the sandwich rule and in-place distillation (BigNAS / OFA style).

Each step trains the largest subnet on the labels, then the smallest and ``n_random`` random
subnets on the largest's soft predictions (in-place distillation), accumulating the gradients
of all of them into one SGD update. The first ``full_fraction`` of the steps train the largest
subnet alone; then every block's hidden channels are sorted by importance, so that shrinking
the expand ratio keeps the most important channels (OFA), and the sandwich begins.

The run is resumable: every ``ckpt_every`` steps the weights, the optimizer state and the step
are saved; data order and subnet draws are functions of (seed, step), so a killed run that
restarts from a checkpoint sees the same batches and subnets it would have seen.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwnas._checks import check_seed
from hwnas._log import progress
from hwnas.train.checkpoint import (META_FILE, OPTIMIZER_FILE, SUPERNET_FILE, load_state,
                                    read_meta, save_state, write_meta)
from hwnas.errors import DataError
from hwnas.spaces import space_plugin
from hwnas.train.data import Dataset, resize
from hwnas.train.distributed import Distributed

__all__ = ["TrainConfig", "train_supernet", "check_resume", "run_meta", "train_standalone", "make_optimizer", "lr_at"]

log = logging.getLogger("hwnas.train")


@dataclass
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 3e-5
    warmup_fraction: float = 0.05
    full_fraction: float = 0.1          # largest-only steps before channel sorting
    n_random: int = 2
    label_smoothing: float = 0.1
    ckpt_every: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        for name, lo, hi in (("epochs", 0.0, 1000.0), ("lr", 0.0, 10.0),
                             ("momentum", -1e-12, 1.0), ("weight_decay", -1e-12, 1.0),
                             ("warmup_fraction", -1e-12, 1.0), ("full_fraction", -1e-12, 1.0),
                             ("label_smoothing", -1e-12, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or not lo < v <= hi:
                raise DataError(f"training {name} must be in ({max(lo, 0):g}, {hi:g}], got {v!r}")
        for name in ("batch_size", "n_random", "ckpt_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "n_random" else 1):
                raise DataError(f"training {name} must be an integer ≥ "
                                f"{0 if name == 'n_random' else 1}, got {v!r}")
        check_seed(self.seed, DataError)

    def total_steps(self, n_train: int) -> int:
        return max(1, math.ceil(self.epochs * n_train / self.batch_size))


def make_optimizer(net: torch.nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with Nesterov momentum; no weight decay on BN, biases and kernel transforms."""
    decay, plain = [], []
    for name, p in net.named_parameters():
        (decay if p.ndim == 4 or (p.ndim == 2 and "transform" not in name) else plain).append(p)
    return torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                            {"params": plain, "weight_decay": 0.0}],
                           lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to zero."""
    warm = max(1, int(cfg.warmup_fraction * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def _batch(data: Dataset, step: int, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of ``step``: epochs are seeded permutations, so resuming repeats them."""
    n = len(data.y_train)
    per_epoch = max(1, n // cfg.batch_size)
    epoch, i = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
    idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
    return data.x_train[idx], data.y_train[idx]


def _subnets(space, step: int, sandwich: bool, cfg: TrainConfig) -> list:
    if not sandwich:
        return [space.largest()]
    rng = np.random.default_rng([cfg.seed, step])
    return [space.largest(), space.smallest()] + space.sample_many(rng, cfg.n_random)


def train_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               archs: list, cfg: TrainConfig) -> float:
    """One update: the first arch learns the labels, the others distil from it."""
    opt.zero_grad(set_to_none=True)
    teacher, loss_first = None, 0.0
    for arch in archs:
        net.set_active_subnet(arch)
        logits = net(resize(x, arch.r).contiguous(memory_format=torch.channels_last))
        if teacher is None:
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            teacher = F.softmax(logits.detach(), 1)
            loss_first = loss.item()
        else:
            loss = torch.sum(-teacher * F.log_softmax(logits, 1), 1).mean()
        loss.backward()
    opt.step()
    return loss_first


def _save(out: Path, net, opt, meta: dict, step: int, wall_s: float, loss_last: float) -> None:
    save_state(out / SUPERNET_FILE, net.state_dict())
    save_state(out / OPTIMIZER_FILE, opt.state_dict())
    meta["train"].update(step=step, wall_s=round(wall_s, 1),
                         loss_last=round(loss_last, 4))
    write_meta(out, meta)


#: config fields that may change when a run resumes (a new --epochs re-plans the schedule)
_RESUMABLE_CHANGES = ("epochs", "ckpt_every")


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in _RESUMABLE_CHANGES}


def run_meta(space, cfg: TrainConfig, dataset_meta: dict, total_steps: int = 0) -> dict:
    """The metadata a training run starts with."""
    return {"space": space.config(), "dataset": dataset_meta,
            "train": {"config": asdict(cfg), "total_steps": total_steps, "step": 0,
                      "wall_s": 0.0, "rule": "sandwich+inplace-distillation"}}


def check_resume(out: str | Path, meta: dict) -> dict | None:
    """The metadata of the run in ``out`` that a run described by ``meta`` (``space``,
    ``dataset``, ``train.config``) would continue; None for a fresh start: no run there, or
    one of another training configuration (which starts afresh).

    A run of another space or dataset, or unreadable metadata, is refused: that folder holds
    another model, which a fresh start would overwrite."""
    path = Path(out) / META_FILE
    if not path.exists():
        return None
    old = read_meta(out)
    if not isinstance(old.get("train"), dict) or not isinstance(old["train"].get("config"), dict):
        raise DataError(f"{path} is not the metadata of a supernet training run; restart it "
                        "to discard it, or choose another folder")
    for what, have, want in (("space", old.get("space"), meta["space"]),
                             ("dataset", (old.get("dataset") or {}).get("spec"),
                              meta["dataset"]["spec"])):
        if have != want:
            raise DataError(f"{out} holds a supernet of another {what} ({have}, not {want}); "
                            "restart it to discard it, or choose another folder")
    if _comparable(old["train"]["config"]) != _comparable(meta["train"]["config"]):
        return None
    return old


def _resume(out: Path, net, opt, meta: dict) -> tuple[int, float]:
    """Load weights, optimizer and step from ``out`` when it holds a run of the same config."""
    old = check_resume(out, meta)
    if old is None:
        return 0, 0.0
    new_cfg, old_train = meta["train"]["config"], old["train"]
    step, wall_s = old_train.get("step", 0), old_train.get("wall_s", 0.0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 \
            or not isinstance(wall_s, (int, float)):
        raise DataError(f"corrupt {out / META_FILE}: 'train.step' must be a count and "
                        "'train.wall_s' a number")
    total = meta["train"]["total_steps"]
    if old_train.get("finished") and old_train.get("total_steps") != total:
        raise DataError(f"{out} holds a finished run of {old_train['config'].get('epochs')} epochs; "
                        "give the same number of epochs, or restart it")
    if not (step >= total or (out / OPTIMIZER_FILE).exists()):
        return 0, 0.0
    net.load_state_dict(load_state(out / SUPERNET_FILE))
    if step < total:
        opt.load_state_dict(load_state(out / OPTIMIZER_FILE))
    meta["train"].update({k: v for k, v in old_train.items()
                          if k not in ("config", "total_steps")})
    if old_train["config"].get("epochs") != new_cfg["epochs"]:
        log.warning("epochs changed from %s to %s at step %d: the schedule follows the new total",
                    old_train["config"].get("epochs"), new_cfg["epochs"], step)
        meta["train"]["replanned"] = list(old_train.get("replanned") or []) + [
            {"step": step, "from_epochs": old_train["config"].get("epochs")}]
    meta.update({k: v for k, v in old.items() if k not in meta})   # later phases' results
    return step, wall_s


def train_supernet(space, data: Dataset, out: str | Path, cfg: TrainConfig,
                   dataset_meta: dict, ddp: Distributed | None = None) -> tuple[nn.Module, dict]:
    """Train (or resume training) a supernet into ``out``; returns it and its metadata.

    ``ddp`` (under torchrun): this process is one rank of a data-parallel job
    (``hwnas.train.distributed``); only rank 0 writes the checkpoint."""
    ddp = ddp or Distributed()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net = space_plugin(space).build_supernet(space).to(memory_format=torch.channels_last)
    opt = make_optimizer(net, cfg)
    total = cfg.total_steps(len(data.y_train))
    meta = run_meta(space, cfg, dataset_meta, total)
    step, wall_s = _resume(out, net, opt, meta)
    ddp.sync_start(net, step)
    ddp.attach(opt)
    meta["train"]["ranks"] = ddp.world_size
    if step:
        log.info("resuming %s at step %d/%d", out, step, total)
    full_steps = int(cfg.full_fraction * total)
    losses: list[float] = []
    bar = progress(total=total, desc="train-supernet", disable=None if ddp.is_main else True)
    bar.update(step)
    net.train()
    while step < total:
        t0 = time.perf_counter()
        if step == full_steps and full_steps > 0:
            net.sort_channels(opt)                            # before shrinking starts
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, cfg)
        x, y = ddp.shard(*_batch(data, step, cfg))
        losses.append(train_step(net, opt, x, y, _subnets(space, step, step >= full_steps, cfg),
                                 cfg))
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if step % cfg.ckpt_every == 0 or step == total:
            ddp.average_buffers(net)
            # the last 20 steps' loss over the global batches: every rank holds its shard's
            loss_last = ddp.mean(float(np.mean(losses[-20:])))
            if ddp.is_main:
                _save(out, net, opt, meta, step, wall_s + time.perf_counter() - t0, loss_last)
            log.info("step %d/%d  loss %.3f  %.0f s", step, total, loss_last, wall_s)
        wall_s += time.perf_counter() - t0
    bar.close()
    return net.eval(), meta


def train_standalone(model: torch.nn.Module, data: Dataset, resolution: int, steps: int,
                     cfg: TrainConfig) -> torch.nn.Module:
    """Train one plain subnet from scratch: same batches, optimizer and schedule as the
    supernet, labels only (the baseline for ranking fidelity)."""
    model = model.to(memory_format=torch.channels_last).train()
    opt = make_optimizer(model, cfg)
    for step in progress(range(steps), total=steps, desc="train-standalone"):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, cfg)
        x, y = _batch(data, step, cfg)
        opt.zero_grad(set_to_none=True)
        logits = model(resize(x, resolution).contiguous(memory_format=torch.channels_last))
        F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing).backward()
        opt.step()
    return model.eval()
