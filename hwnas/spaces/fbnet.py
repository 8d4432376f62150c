"""FBNet: 22 searchable layers × 9 candidate blocks in the FBNet-A/B/C macro-structure.

Macro-structure (FBNet paper, Table 1): a 3×3 stem to 16 channels, then stages of
(width, layers, stride) (16,1,1) (24,4,2) (32,4,2) (64,4,2) (112,4,1) (184,4,2) (352,1,1),
a 1×1 conv to 1984, pooling and the classifier. For CIFAR-sized inputs (the default, 32×32 and
100 classes, as the published FBNet latency data) the stem and the 24-wide stage keep stride 1,
so the feature map goes 32 → 16 → 8 → 4; ``cifar=False`` restores the ImageNet strides.

Candidates (gene values, the names of the published data): k3_e1, k3_e1_g2, k3_e3, k3_e6,
k5_e1, k5_e1_g2, k5_e3, k5_e6, skip. ``k<k>_e<e>[_g2]`` is 1×1 (group) conv → k×k depthwise →
1×1 (group) conv with expansion e; *skip* is the identity where the shape is kept and a strided
1×1 conv + BN where it changes.

Arch grammar: ``r<res>`` then one ``-``-separated group per stage, layers joined by ``.``::

    r32-k3_e1-k3_e6.skip.k5_e3.k3_e1_g2-...-k5_e6

Genome: 22 candidate indices, then the resolution index (one resolution by default).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import ArchError
from hwnas.spaces._base import OP_BUILDERS, OpSpec, SearchSpace, positive_int, resolution_list
from hwnas.spaces._cost import cost_table
from hwnas.spaces._layers import LayerView, gene_per_layer_view
from hwnas.spaces._plugin import PublishedLatency, SpacePlugin, register_space
from hwnas.spaces.ofa_mbv3 import OFAMobileNetV3Space

__all__ = ["FBNET_CANDIDATES", "FBNetArch", "FBNetSpace", "PLUGIN"]

FBNET_CANDIDATES = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6",
                    "skip")
STAGES = ((16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
STEM, FINAL = 16, 1984
N_LAYERS = sum(n for _, n, _ in STAGES)
_CAND = re.compile(r"^k(?P<k>[0-9])_e(?P<e>[0-9])(?:_g(?P<g>[0-9]))?\Z")


def _candidate(name: str) -> tuple[int, int, int] | None:
    """(kernel, expand, groups) of a candidate name; None for skip."""
    if name == "skip":
        return None
    m = _CAND.match(name)
    return int(m["k"]), int(m["e"]), int(m["g"] or 1)


@dataclass(frozen=True)
class FBNetArch:
    r: int
    ops: tuple[str, ...]

    def __str__(self) -> str:
        groups, i = [], 0
        for _, n, _ in STAGES:
            groups.append(".".join(self.ops[i:i + n]))
            i += n
        return f"r{self.r}-" + "-".join(groups)

    def to_json(self) -> dict:
        return {"space": "fbnet", "arch": str(self), "r": self.r, "ops": list(self.ops)}


class FBNetSpace(SearchSpace):
    name = "fbnet"
    kernels_follow_operators = True

    def __init__(self, resolutions: Sequence[int] | None = None, num_classes: int = 100,
                 in_chans: int = 3, cifar: bool = True) -> None:
        self.resolutions = resolution_list("fbnet", resolutions, (32,), 8)
        self.num_classes = positive_int("fbnet", "num_classes", num_classes)
        self.in_chans = positive_int("fbnet", "in_chans", in_chans, 64)
        self.cifar = bool(cifar)
        self.stem_stride = 1 if self.cifar else 2
        self.layers = self._layers()
        self._build_op_index()

    def config(self) -> dict:
        return {"name": self.name, "resolutions": list(self.resolutions),
                "num_classes": self.num_classes, "in_chans": self.in_chans, "cifar": self.cifar}

    def _layers(self) -> list[tuple[int, int, int]]:
        """(in_chs, out_chs, stride) of the 22 searchable layers."""
        out, cin = [], STEM
        for s, (width, n, stride) in enumerate(STAGES):
            if self.cifar and s == 1:
                stride = 1
            for j in range(n):
                out.append((cin, width, stride if j == 0 else 1))
                cin = width
        return out

    # ------------------------------------------------------------------ arch I/O
    def parse(self, text: str) -> FBNetArch:
        parts = text.strip().split("-")
        if len(parts) != len(STAGES) + 1 or not re.fullmatch(r"r[0-9]+", parts[0]):
            raise ArchError(f"malformed fbnet arch {text!r}: expected r<res> and {len(STAGES)} "
                            f"'-'-separated stages of '.'-joined candidates "
                            f"({', '.join(FBNET_CANDIDATES)})")
        ops: list[str] = []
        for s, (group, (_, n, _)) in enumerate(zip(parts[1:], STAGES), 1):
            toks = group.split(".")
            if len(toks) != n:
                raise ArchError(f"arch {text!r}: stage {s} has {len(toks)} layers, expected {n}")
            ops.extend(toks)
        return self.make(int(parts[0][1:]), ops)

    def make(self, r: int, ops: Sequence[str]) -> FBNetArch:
        if r not in self.resolutions:
            raise ArchError(f"resolution {r} not in this space {list(self.resolutions)}")
        ops = tuple(ops)
        if len(ops) != N_LAYERS:
            raise ArchError(f"an fbnet arch has {N_LAYERS} layers, got {len(ops)}")
        for i, o in enumerate(ops):
            if o not in FBNET_CANDIDATES:
                raise ArchError(f"layer {i + 1}: candidate {o!r} not in {list(FBNET_CANDIDATES)}")
        return FBNetArch(r, ops)

    def from_json(self, obj: dict) -> FBNetArch:
        if isinstance(obj.get("arch"), str):
            return self.parse(obj["arch"])
        if isinstance(obj.get("ops"), list):
            r = obj.get("r", self.resolutions[0])
            if isinstance(r, bool) or not isinstance(r, int):
                raise ArchError(f"fbnet arch JSON: 'r' must be an integer resolution, got {r!r}")
            return self.make(r, obj["ops"])
        raise ArchError("fbnet arch JSON needs an 'arch' string or an 'ops' list")

    # ------------------------------------------------------------------ genomes
    @property
    def genome_len(self) -> int:
        return N_LAYERS + 1

    def choice_sizes(self) -> np.ndarray:
        return np.array([len(FBNET_CANDIDATES)] * N_LAYERS + [len(self.resolutions)])

    # shared with ofa-mbv3: they only use choice_sizes and genome_len (last gene: resolution)
    sample_genomes = OFAMobileNetV3Space.sample_genomes
    mutate_genomes = OFAMobileNetV3Space.mutate_genomes
    crossover_genomes = OFAMobileNetV3Space.crossover_genomes

    def canonical_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return genomes.copy()

    def to_genomes(self, archs: Sequence[FBNetArch]) -> np.ndarray:
        ix = {o: i for i, o in enumerate(FBNET_CANDIDATES)}
        g = np.zeros((len(archs), self.genome_len), np.int16)
        for n, a in enumerate(archs):
            g[n, :-1] = [ix[o] for o in a.ops]
            g[n, -1] = self.resolutions.index(a.r)
        return g

    def from_genome(self, genome: np.ndarray) -> FBNetArch:
        g = [int(v) for v in genome]
        return FBNetArch(self.resolutions[g[-1]], tuple(FBNET_CANDIDATES[v] for v in g[:-1]))

    def encode_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """One-hot candidate per layer (N, 22 × 9), then the scaled resolution."""
        n = len(genomes)
        onehot = np.eye(len(FBNET_CANDIDATES), dtype=np.float32)[genomes[:, :-1]].reshape(n, -1)
        res = np.asarray(self.resolutions, np.float32)[genomes[:, -1]]
        lo, hi = self.resolutions[0], self.resolutions[-1]
        return np.concatenate([onehot, ((res - lo) / max(hi - lo, 1))[:, None]], 1)

    # ------------------------------------------------------------------ operators
    def _layer_op(self, hw: int, i: int, name: str) -> OpSpec | None:
        cin, cout, stride = self.layers[i]
        out = -(-hw // stride)
        cand = _candidate(name)
        if cand is None:
            if stride == 1 and cin == cout:
                return None
            return OpSpec("skip_proj", (hw, hw, cin), (out, out, cout), (("stride", stride),),
                          "fbnet")
        k, e, g = cand
        return OpSpec("tbs", (hw, hw, cin), (out, out, cout),
                      (("expand", e), ("kernel", k), ("group", g), ("stride", stride),
                       ("idskip", int(stride == 1 and cin == cout))), "fbnet")

    def _fixed_ops(self, r: int) -> tuple[list[OpSpec], list[OpSpec], int]:
        h = -(-r // self.stem_stride)
        hw = h
        for *_, s in self.layers:
            hw = -(-hw // s)
        last = self.layers[-1][1]
        pre = [OpSpec("Conv", (r, r, self.in_chans), (h, h, STEM),
                      (("stride", self.stem_stride),), "fbnet")]
        post = [OpSpec("Conv_1", (hw, hw, last), (hw, hw, FINAL), family="fbnet"),
                OpSpec("Logits", (hw, hw, FINAL), (self.num_classes,), family="fbnet")]
        return pre, post, h

    def _build_op_index(self) -> None:
        ids: dict[OpSpec, int] = {}
        nr, nc = len(self.resolutions), len(FBNET_CANDIDATES)
        self._fixed_idx = np.zeros((nr, 3), np.int64)
        self._layer_idx = np.zeros((nr, N_LAYERS, nc), np.int64)
        for ri, r in enumerate(self.resolutions):
            pre, post, hw = self._fixed_ops(r)
            for c, op in enumerate(pre + post):
                self._fixed_idx[ri, c] = ids.setdefault(op, len(ids))
            for i in range(N_LAYERS):
                for v, name in enumerate(FBNET_CANDIDATES):
                    op = self._layer_op(hw, i, name)
                    self._layer_idx[ri, i, v] = -1 if op is None else ids.setdefault(op, len(ids))
                hw = -(-hw // self.layers[i][2])
        self.op_list: list[OpSpec] = list(ids)
        self.null_op = len(self.op_list)
        self._layer_idx[self._layer_idx < 0] = self.null_op
        self._costs: dict[str, np.ndarray] | None = None

    def op_indices(self, genomes: np.ndarray) -> np.ndarray:
        """(N, 3 fixed + 22 layers) op ids; identity skips point at ``null_op``."""
        r = genomes[:, -1].astype(np.intp)
        layers = self._layer_idx[r[:, None], np.arange(N_LAYERS)[None, :],
                                 genomes[:, :-1].astype(np.intp)]
        return np.concatenate([self._fixed_idx[r], layers], 1)

    def ops(self, arch: FBNetArch) -> list[OpSpec]:
        ids = self.op_indices(self.to_genomes([arch]))[0]
        return [self.op_list[i] for i in ids[:1]] + \
            [self.op_list[i] for i in ids[3:] if i != self.null_op] + \
            [self.op_list[i] for i in ids[1:3]]

    def cost_vectors(self) -> dict[str, np.ndarray]:
        """Per-op ``macs``, ``params``, ``act`` aligned with ``op_list``, plus 0 for ``null_op``."""
        if self._costs is None:
            self._costs = cost_table(self.op_list, _cost)
        return self._costs

    def build(self, arch: FBNetArch, num_classes: int | None = None):
        """The chain of the arch's operator modules (fresh weights)."""
        from torch import nn

        ops = self.ops(arch)
        if num_classes is not None and num_classes != self.num_classes:
            last = ops[-1]
            ops[-1] = OpSpec(last.kind, last.input, (num_classes,), last.attrs, last.family)
        return nn.Sequential(*[op.build() for op in ops])

    def largest(self) -> FBNetArch:
        return FBNetArch(self.resolutions[-1], ("k5_e6",) * N_LAYERS)

    def smallest(self) -> FBNetArch:
        return FBNetArch(self.resolutions[0], ("skip",) * N_LAYERS)


def _cost(op: OpSpec) -> tuple[int, int, int]:
    """(MACs, params, activation elements) of one fbnet operator at batch 1."""
    cin, cout = op.input[-1], op.output[-1]
    hw_in = op.input[0] * op.input[1]
    hw_out = op.output[0] * op.output[1] if len(op.output) == 3 else 1
    act = hw_in * cin + hw_out * cout
    if op.kind == "tbs":
        mid, k, g = cin * op.attr("expand"), op.attr("kernel"), op.attr("group")
        macs = hw_in * cin * mid // g + hw_out * mid * k * k + hw_out * mid * cout // g
        params = cin * mid // g + mid * k * k + mid * cout // g + 4 * mid + 2 * cout
        return macs, params, max(act, hw_in * (cin + mid) + hw_out * mid)
    if op.kind in ("Conv", "Conv_1", "skip_proj"):
        k = 3 if op.kind == "Conv" else 1
        return hw_out * cin * cout * k * k, cin * cout * k * k + 2 * cout, act
    if op.kind == "Logits":
        n = op.output[0]
        return hw_in * cin + cin * n, cin * n + n, hw_in * cin
    raise ValueError(f"no cost model for fbnet operator kind '{op.kind}'")


@OP_BUILDERS.register("fbnet/Conv")
@OP_BUILDERS.register("fbnet/tbs")
@OP_BUILDERS.register("fbnet/skip_proj")
@OP_BUILDERS.register("fbnet/Conv_1")
@OP_BUILDERS.register("fbnet/Logits")
def _fbnet_op(op: OpSpec):
    from hwnas.nn.fbnet_ops import build_fbnet_op

    return build_fbnet_op(op)


def _layer_view(space: FBNetSpace, r_index: int) -> LayerView:
    cands = [space._layer_idx[r_index, i] for i in range(N_LAYERS)]
    return gene_per_layer_view(space, r_index, 1, cands, [FBNET_CANDIDATES] * N_LAYERS)


def _published_genomes(space: FBNetSpace, texts: list[str]) -> np.ndarray:
    """The published file's candidate indices, then the (single) resolution index."""
    genes = np.array([[int(v) for v in t.split()] for t in texts], np.int16)
    return np.concatenate([genes, np.zeros((len(genes), 1), np.int16)], 1)


PLUGIN = register_space(SpacePlugin(
    name="fbnet", space=FBNetSpace, layer_view=_layer_view,
    published_latency=PublishedLatency("fbnet_latency_ms.csv", 3, _published_genomes)))
