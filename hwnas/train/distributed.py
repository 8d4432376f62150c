"""Data-parallel supernet training with ``torch.distributed`` (gloo, CPU), launched by torchrun.

``torchrun --nproc_per_node N -m hwnas train-supernet ...`` starts N ranks. Every rank builds
the same supernet from the same seed and draws the same subnets at each step (they are
functions of seed and step); the global batch of a step is the one single-process training
uses, split into N equal shards, one per rank. After the step's backward passes the gradients
are summed over ranks and divided by N: for equal shards that is exactly the gradient of the
global batch. BatchNorm statistics are the one difference: each rank normalises with its own
shard's statistics, as with DDP without SyncBatchNorm, which is why results agree within noise
rather than bit for bit.

Why not ``DistributedDataParallel``: a sandwich step runs several subnets, each with its own
forward and backward, and each subnet leaves other parts of the supernet unused. DDP would
all-reduce once per backward and needs ``find_unused_parameters``, under which a parameter
unused by a later subnet has its bucket slot filled from zeros; one explicit all-reduce of the
accumulated gradients just before ``optimizer.step`` is simpler and exact.

Only rank 0 writes checkpoints (atomically, as single-process training does); every rank
resumes from the same files.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hwnas.errors import HwnasError

__all__ = ["Distributed", "init_distributed"]

log = logging.getLogger("hwnas.train")

_CLOSED_KEY = "hwnas/ranks_closed"


@dataclass
class Distributed:
    """This process's place in the job; ``world_size == 1`` means no ``torch.distributed``."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- data
    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's equal share of the step's global batch (the remainder is dropped, so
        that averaging the ranks' gradients is the global batch's gradient)."""
        if not self.enabled:
            return x, y
        per = len(y) // self.world_size
        if per == 0:
            raise HwnasError(f"batch of {len(y)} cannot be split over {self.world_size} ranks")
        sl = slice(self.rank * per, (self.rank + 1) * per)
        return x[sl], y[sl]

    # ---- collectives
    def attach(self, opt: torch.optim.Optimizer) -> None:
        """Average the accumulated gradients over ranks right before every ``opt.step``."""
        if self.enabled:
            opt.register_step_pre_hook(lambda o, _args, _kw: self.average_grads(o))

    def average_grads(self, opt: torch.optim.Optimizer) -> None:
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        self._check_same(len(grads), "parameters with gradients")
        self._average(grads)

    def average_buffers(self, net: torch.nn.Module) -> None:
        """Average the floating buffers (BN running statistics) so that every rank, and so the
        checkpoint, holds the estimate over all shards."""
        if self.enabled:
            self._average([b for b in net.buffers() if b.is_floating_point()])

    def mean(self, value: float) -> float:
        """The mean over ranks of a per-rank figure (a loss over this rank's shards: for equal
        shards, the mean is the figure over the global batches)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        self._average([t])
        return float(t[0])

    def _average(self, tensors: list[torch.Tensor]) -> None:
        """In place, the mean over ranks of each tensor: one all-reduce of them all, flattened."""
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def sync_start(self, net: torch.nn.Module, step: int) -> None:
        """Start from rank 0's weights, and refuse ranks that resumed at different steps."""
        if not self.enabled:
            return
        self._check_same(step, "resume step")
        for t in list(net.parameters()) + list(net.buffers()):
            dist.broadcast(t.data, 0)

    def _check_same(self, value: int, what: str) -> None:
        t = torch.tensor([value, -value], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        if int(t[0]) != -int(t[1]):
            raise HwnasError(f"ranks disagree on {what}: from {-int(t[1])} to {int(t[0])}")

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self, timeout_s: float = 60.0) -> None:
        """Leave the job in order: the other ranks tear their process group down first, and
        rank 0, whose process hosts the rendezvous store, waits for them before its own.

        If rank 0 destroyed its group and exited while a peer was still tearing down, the
        peer's gloo and store threads could lose the connection mid-call and abort the process
        (a rare SIGABRT at exit, seen on a loaded machine)."""
        if not (self.enabled and dist.is_initialized()):
            return
        store = dist.distributed_c10d._get_default_store()
        dist.barrier()
        if not self.is_main:
            dist.destroy_process_group()
            store.add(_CLOSED_KEY, 1)
            return
        deadline = time.monotonic() + timeout_s
        while store.add(_CLOSED_KEY, 0) < self.world_size - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        dist.destroy_process_group()


def init_distributed() -> Distributed:
    """Join the torchrun job described by the environment (``WORLD_SIZE``, ``RANK``,
    ``MASTER_ADDR``...), on the gloo backend; a plain run gets a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not dist.is_available():
        raise HwnasError("this torch build has no torch.distributed")
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    ctx = Distributed(dist.get_rank(), dist.get_world_size())
    if not ctx.is_main:                       # one voice: rank 0 logs and reports
        logging.getLogger("hwnas").setLevel(logging.WARNING)
    log.info("torch.distributed: %d ranks on gloo (this is rank %d)", ctx.world_size, ctx.rank)
    return ctx
