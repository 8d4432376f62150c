"""NAS-Bench-201: one cell of 6 edges × 5 operations, repeated in a fixed CIFAR network.

Arch grammar (the benchmark's own string)::

    |<op>~0|+|<op>~0|<op>~1|+|<op>~0|<op>~1|<op>~2|

Group ``j`` lists the edges into node ``j`` (1..3); ``<op>~i`` is the operation on the edge from
node ``i``; ops are ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3`` and
``avg_pool_3x3``. Genome: the 6 op indices in that order (no resolution gene: the benchmark
fixes the input at 32×32). Example:
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.

The network (``build``) is the benchmark's: a 3×3 stem to C channels, N cells per stage at
widths C, 2C, 4C, residual stride-2 blocks between stages, BN-ReLU, pooling and a linear head.
Operators for tables are the stem, the two reductions, the head, and each parametrised edge op
at each stage's shape; ``none`` and ``skip_connect`` cost nothing in a table sum.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import ArchError
from hwnas.spaces._base import OP_BUILDERS, OpSpec, SearchSpace, positive_int, resolution_list
from hwnas.spaces._cost import cost_table
from hwnas.spaces._plugin import PublishedLatency, SpacePlugin, register_space

__all__ = ["NB201_OPS", "NB201Arch", "NB201Space", "PLUGIN"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_EDGES = 6
_FROM = (0, 0, 1, 0, 1, 2)          # source node of each edge, in string order
_GROUP_SIZES = (1, 2, 3)
_TOKEN = re.compile(r"^(?P<op>[a-z_0-9]+)~(?P<src>[0-9]+)\Z")
_FREE = ("none", "skip_connect")    # no operator of their own in a table


@dataclass(frozen=True)
class NB201Arch:
    ops: tuple[str, ...]

    def __str__(self) -> str:
        toks = [f"{o}~{i}" for o, i in zip(self.ops, _FROM)]
        groups, k = [], 0
        for n in _GROUP_SIZES:
            groups.append("|" + "|".join(toks[k:k + n]) + "|")
            k += n
        return "+".join(groups)

    def to_json(self) -> dict:
        return {"space": "nb201", "arch": str(self), "ops": list(self.ops)}


class NB201Space(SearchSpace):
    name = "nb201"

    def __init__(self, channels: int = 16, cells: int = 5, num_classes: int = 10,
                 in_chans: int = 3, resolution: int = 32) -> None:
        self.channels = positive_int("nb201", "channels", channels, 4096)
        self.cells = positive_int("nb201", "cells", cells, 64)
        self.resolution = resolution_list("nb201", [resolution], None, 8)[0]
        self.num_classes = positive_int("nb201", "num_classes", num_classes)
        self.in_chans = positive_int("nb201", "in_chans", in_chans, 64)
        self._build_op_index()

    def input_shape(self, arch) -> tuple[int, int, int, int]:
        return (1, self.in_chans, self.resolution, self.resolution)

    def config(self) -> dict:
        return {"name": self.name, "channels": self.channels, "cells": self.cells,
                "num_classes": self.num_classes, "in_chans": self.in_chans,
                "resolution": self.resolution}

    # ------------------------------------------------------------------ arch I/O
    def parse(self, text: str) -> NB201Arch:
        groups = text.strip().split("+")
        if len(groups) != 3:
            raise ArchError(f"malformed nb201 arch {text!r}: expected 3 '+'-separated groups "
                            "like |nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|")
        ops: list[str] = []
        for j, (g, n) in enumerate(zip(groups, _GROUP_SIZES), 1):
            if not (g.startswith("|") and g.endswith("|")):
                raise ArchError(f"arch {text!r}: group {j} must start and end with '|'")
            toks = g[1:-1].split("|")
            if len(toks) != n:
                raise ArchError(f"arch {text!r}: node {j} has {len(toks)} edges, expected {n}")
            for i, tok in enumerate(toks):
                m = _TOKEN.match(tok)
                if not m or int(m["src"]) != i:
                    raise ArchError(f"arch {text!r}: edge {tok!r} into node {j} must read "
                                    f"<op>~{i}")
                ops.append(m["op"])
        return self.make(ops)

    def make(self, ops: Sequence[str]) -> NB201Arch:
        ops = tuple(ops)
        if len(ops) != N_EDGES:
            raise ArchError(f"an nb201 arch has {N_EDGES} edges, got {len(ops)}")
        for e, o in enumerate(ops):
            if o not in NB201_OPS:
                raise ArchError(f"edge {e} ({_FROM[e]}→node): op {o!r} not in {list(NB201_OPS)}")
        return NB201Arch(ops)

    def from_json(self, obj: dict) -> NB201Arch:
        if isinstance(obj.get("arch"), str):
            return self.parse(obj["arch"])
        if isinstance(obj.get("ops"), list):
            return self.make(obj["ops"])
        raise ArchError("nb201 arch JSON needs an 'arch' string or an 'ops' list")

    # ------------------------------------------------------------------ genomes
    @property
    def genome_len(self) -> int:
        return N_EDGES

    def choice_sizes(self) -> np.ndarray:
        return np.full(N_EDGES, len(NB201_OPS))

    def sample_genomes(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, len(NB201_OPS), (n, N_EDGES)).astype(np.int16)

    def mutate_genomes(self, rng: np.random.Generator, genomes: np.ndarray,
                       prob: float = 1 / N_EDGES) -> np.ndarray:
        flip = rng.random(genomes.shape) < prob
        return np.where(flip, self.sample_genomes(rng, len(genomes)), genomes).astype(np.int16)

    def crossover_genomes(self, rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(rng.random(a.shape) < 0.5, a, b).astype(np.int16)

    def canonical_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return genomes.copy()

    def to_genomes(self, archs: Sequence[NB201Arch]) -> np.ndarray:
        ix = {o: i for i, o in enumerate(NB201_OPS)}
        return np.array([[ix[o] for o in a.ops] for a in archs], np.int16).reshape(-1, N_EDGES)

    def from_genome(self, genome: np.ndarray) -> NB201Arch:
        return NB201Arch(tuple(NB201_OPS[int(v)] for v in genome))

    def encode_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """One-hot op per edge: (N, 6 × 5)."""
        return np.eye(len(NB201_OPS), dtype=np.float32)[genomes].reshape(len(genomes), -1)

    # ------------------------------------------------------------------ operators
    def _stage_shapes(self) -> list[tuple[int, int]]:
        hw, c = self.resolution, self.channels
        return [(hw, c), (-(-hw // 2), 2 * c), (-(-hw // 4), 4 * c)]

    def _build_op_index(self) -> None:
        shapes = self._stage_shapes()
        (h0, c0), (h1, c1), (h2, c2) = shapes
        fam = "nb201"
        fixed = [OpSpec("stem", (h0, h0, self.in_chans), (h0, h0, c0), family=fam),
                 OpSpec("reduction", (h0, h0, c0), (h1, h1, c1), family=fam),
                 OpSpec("reduction", (h1, h1, c1), (h2, h2, c2), family=fam),
                 OpSpec("head", (h2, h2, c2), (self.num_classes,), family=fam)]
        self.op_list: list[OpSpec] = list(fixed)
        self.null_op = -1
        edge_ops = [o for o in NB201_OPS if o not in _FREE]
        self._edge_idx = np.zeros((3, len(NB201_OPS)), np.int64)
        for s, (hw, c) in enumerate(shapes):
            for o in edge_ops:
                self._edge_idx[s, NB201_OPS.index(o)] = len(self.op_list)
                self.op_list.append(OpSpec(o, (hw, hw, c), (hw, hw, c), family=fam))
        self.null_op = len(self.op_list)
        for o in _FREE:
            self._edge_idx[:, NB201_OPS.index(o)] = self.null_op
        self._fixed_idx = np.arange(len(fixed))
        self._costs: dict[str, np.ndarray] | None = None

    def op_indices(self, genomes: np.ndarray) -> np.ndarray:
        """(N, 4 fixed + 3 stages × cells × 6 edges) op ids; free edges point at ``null_op``."""
        n = len(genomes)
        g = genomes.astype(np.intp)
        per_stage = [np.tile(self._edge_idx[s][g], (1, self.cells)) for s in range(3)]
        return np.concatenate([np.broadcast_to(self._fixed_idx, (n, 4))] + per_stage, 1)

    def ops(self, arch: NB201Arch) -> list[OpSpec]:
        ids = self.op_indices(self.to_genomes([arch]))[0]
        return [self.op_list[i] for i in ids if i != self.null_op]

    def cost_vectors(self) -> dict[str, np.ndarray]:
        """Per-op ``macs``, ``params``, ``act`` aligned with ``op_list``, plus 0 for ``null_op``."""
        if self._costs is None:
            self._costs = cost_table(self.op_list, _cost)
        return self._costs

    def smallest(self) -> NB201Arch:
        """Every edge ``none``: only the stem, the reductions and the head compute."""
        return NB201Arch(("none",) * N_EDGES)

    def largest(self) -> NB201Arch:
        return NB201Arch(("nor_conv_3x3",) * N_EDGES)

    def build(self, arch: NB201Arch, num_classes: int | None = None):
        from hwnas.nn.nb201_net import NB201Net

        return NB201Net(arch.ops, self.channels, self.cells, num_classes or self.num_classes,
                        self.in_chans)


def _cost(op: OpSpec) -> tuple[int, int, int]:
    """(MACs, params, activation elements) of one nb201 operator at batch 1."""
    hw_in = op.input[0] * op.input[1] if len(op.input) == 3 else 1
    cin = op.input[-1]
    if op.kind == "head":
        return cin * op.output[0] + hw_in * cin, cin * op.output[0] + op.output[0] + 2 * cin, hw_in * cin
    ho, _, cout = op.output
    act = hw_in * cin + ho * ho * cout
    if op.kind == "stem":
        return ho * ho * cin * cout * 9, cin * cout * 9 + 2 * cout, act
    if op.kind == "reduction":
        macs = ho * ho * cout * (cin * 9 + cout * 9 + cin)
        return macs, cin * cout * 9 + cout * cout * 9 + cin * cout + 4 * cout, act
    k = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(op.kind)
    if k is not None:
        return ho * ho * cin * cout * k * k, cin * cout * k * k + 2 * cout, act
    return ho * ho * cin * 9, 0, act                                      # avg_pool_3x3


# ---------------------------------------------------------------------------- op modules
@OP_BUILDERS.register("nb201/stem")
def _stem(op: OpSpec):
    from torch import nn

    return nn.Sequential(nn.Conv2d(op.input[2], op.output[2], 3, 1, 1, bias=False),
                         nn.BatchNorm2d(op.output[2]))


@OP_BUILDERS.register("nb201/reduction")
def _reduction(op: OpSpec):
    from hwnas.nn.nb201_net import ResidualReduction

    return ResidualReduction(op.input[2], op.output[2])


@OP_BUILDERS.register("nb201/head")
def _head(op: OpSpec):
    from torch import nn

    c = op.input[-1]
    return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                         nn.Linear(c, op.output[0]))


def _edge_builder(name: str):
    def build(op: OpSpec):
        from hwnas.nn.nb201_net import edge_op

        return edge_op(name, op.input[2])

    return build


for _name in NB201_OPS:
    if _name not in _FREE:
        OP_BUILDERS.register(f"nb201/{_name}")(_edge_builder(_name))


def _published_genomes(space: NB201Space, texts: list[str]) -> np.ndarray:
    return space.to_genomes([space.parse(t) for t in texts])


PLUGIN = register_space(SpacePlugin(
    name="nb201", space=NB201Space,
    published_latency=PublishedLatency("nb201_latency_ms.csv", 2, _published_genomes)))
