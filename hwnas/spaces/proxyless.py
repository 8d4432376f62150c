"""ProxylessNAS mobile space: 21 searchable MBConv layers, each k3/5/7 × e3/6, plus *skip*.

Layout (width 1.0, as the published mobile search space): a 3×3 stride-2 stem to 32 channels,
a fixed MBConv (expand 1, k3) to 16, then six stages of (width, layers, stride)
(24,4,2) (40,4,2) (80,4,2) (96,4,1) (192,4,2) (320,1,1), a 1×1 conv to 1280 and the pooled
classifier. The first layer of each stage changes shape and cannot be skipped; the others can
(*skip* keeps the residual path: ProxylessNAS's "zero" op). Operator keys match the published
lookup table (``expand`` is the ratio, no SE or hswish attributes)::

    expanded_conv-input:56x56x24-output:28x28x40-expand:6-kernel:5-stride:2-idskip:0

Activations are ReLU (the published nets use ReLU6; the difference does not change shapes,
costs or keys).

Arch grammar: ``r<res>`` then one ``-``-separated group per stage, layers joined by ``.``,
each ``k<kernel>e<expand>`` or ``skip``. Example:
``r224-k3e3.skip.skip.skip-k5e3.k3e3.skip.skip-k7e6.k3e3.k3e3.skip-k5e3.skip.skip.skip-k7e6.k5e6.skip.skip-k7e6``.

Genomes: one gene per layer, then the resolution index. Gene values are ordered cheapest
first: for skippable layers 0 is *skip* and 1..6 the MBConvs (k3e3, k3e6, k5e3, k5e6, k7e3,
k7e6); for the others 0..5 are the MBConvs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import ArchError
from hwnas.spaces._base import OP_BUILDERS, OpSpec, SearchSpace, positive_int, resolution_list
from hwnas.spaces._cost import op_cost
from hwnas.spaces._layers import LayerView, gene_per_layer_view
from hwnas.spaces._plugin import SpacePlugin, register_space
from hwnas.spaces.ofa_mbv3 import OFAMobileNetV3Space

__all__ = ["ProxylessArch", "ProxylessSpace", "PLUGIN"]

STAGES = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
STEM, FIRST, FINAL = 32, 16, 1280
MBCONVS = tuple((k, e) for k in (3, 5, 7) for e in (3, 6))
_TOKEN = re.compile(r"^(?:k(?P<k>[0-9])e(?P<e>[0-9])|skip)\Z")


def _label(op: tuple[int, int] | None) -> str:
    return "skip" if op is None else f"k{op[0]}e{op[1]}"


@dataclass(frozen=True)
class ProxylessArch:
    """Resolution and, per searchable layer, ``(kernel, expand)`` or ``None`` for skip."""

    r: int
    ops: tuple[tuple[int, int] | None, ...]

    def __str__(self) -> str:
        groups, i = [], 0
        for _, n, _ in STAGES:
            groups.append(".".join(_label(o) for o in self.ops[i:i + n]))
            i += n
        return f"r{self.r}-" + "-".join(groups)

    def to_json(self) -> dict:
        return {"space": "proxyless", "arch": str(self), "r": self.r,
                "ops": [_label(o) for o in self.ops]}


def _layers() -> list[tuple[int, int, int, bool]]:
    """(in_chs, out_chs, stride, skippable) of the 21 searchable layers."""
    out, cin = [], FIRST
    for width, n, stride in STAGES:
        for j in range(n):
            out.append((cin, width, stride if j == 0 else 1, j > 0))
            cin = width
    return out


LAYERS = _layers()


class ProxylessSpace(SearchSpace):
    """The ProxylessNAS mobile space; ``resolutions``, ``num_classes`` and ``in_chans`` configurable."""

    name = "proxyless"
    kernels_follow_operators = True

    def __init__(self, resolutions: Sequence[int] | None = None, num_classes: int = 1000,
                 in_chans: int = 3) -> None:
        self.resolutions = resolution_list("proxyless", resolutions, (224,), 32)
        self.num_classes = positive_int("proxyless", "num_classes", num_classes)
        self.in_chans = positive_int("proxyless", "in_chans", in_chans, 64)
        self._choices = [([None] if skip else []) + list(MBCONVS) for *_, skip in LAYERS]
        self._build_op_index()

    def config(self) -> dict:
        return {"name": self.name, "resolutions": list(self.resolutions),
                "num_classes": self.num_classes, "in_chans": self.in_chans}

    # ------------------------------------------------------------------ arch I/O
    def parse(self, text: str) -> ProxylessArch:
        parts = text.strip().split("-")
        if len(parts) != len(STAGES) + 1 or not re.fullmatch(r"r[0-9]+", parts[0]):
            raise ArchError(f"malformed proxyless arch {text!r}: expected r<res> and "
                            f"{len(STAGES)} '-'-separated stages of k<k>e<e>|skip")
        ops = []
        for s, (group, (_, n, _)) in enumerate(zip(parts[1:], STAGES), 1):
            toks = group.split(".")
            if len(toks) != n:
                raise ArchError(f"arch {text!r}: stage {s} has {len(toks)} layers, expected {n}")
            for t in toks:
                m = _TOKEN.match(t)
                if not m:
                    raise ArchError(f"arch {text!r}: layer {t!r} in stage {s} is not k<k>e<e> or skip")
                ops.append(None if t == "skip" else (int(m["k"]), int(m["e"])))
        return self.make(int(parts[0][1:]), ops)

    def make(self, r: int, ops) -> ProxylessArch:
        if r not in self.resolutions:
            raise ArchError(f"resolution {r} not in this space {list(self.resolutions)}")
        ops = tuple(None if o is None else (int(o[0]), int(o[1])) for o in ops)
        if len(ops) != len(LAYERS):
            raise ArchError(f"a proxyless arch has {len(LAYERS)} layers, got {len(ops)}")
        for i, o in enumerate(ops):
            if o not in self._choices[i]:
                allowed = ", ".join(_label(c) for c in self._choices[i])
                raise ArchError(f"layer {i + 1}: '{_label(o)}' not allowed here ({allowed})")
        return ProxylessArch(r, ops)

    def from_json(self, obj: dict) -> ProxylessArch:
        if not isinstance(obj.get("arch"), str):
            raise ArchError("proxyless arch JSON needs an 'arch' string")
        return self.parse(obj["arch"])

    # ------------------------------------------------------------------ genomes
    @property
    def genome_len(self) -> int:
        return len(LAYERS) + 1

    def choice_sizes(self) -> np.ndarray:
        return np.array([len(c) for c in self._choices] + [len(self.resolutions)])

    # the genome plumbing below only uses choice_sizes, genome_len, op_list and op_indices,
    # which is exactly what ofa-mbv3's implementation needs: share it instead of copying it
    sample_genomes = OFAMobileNetV3Space.sample_genomes
    mutate_genomes = OFAMobileNetV3Space.mutate_genomes
    crossover_genomes = OFAMobileNetV3Space.crossover_genomes
    def canonical_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return genomes.copy()                                 # every gene is live

    def to_genomes(self, archs: Sequence[ProxylessArch]) -> np.ndarray:
        g = np.zeros((len(archs), self.genome_len), np.int16)
        for n, a in enumerate(archs):
            g[n, :-1] = [self._choices[i].index(o) for i, o in enumerate(a.ops)]
            g[n, -1] = self.resolutions.index(a.r)
        return g

    def from_genome(self, genome: np.ndarray) -> ProxylessArch:
        g = [int(v) for v in genome]
        return ProxylessArch(self.resolutions[g[-1]],
                             tuple(self._choices[i][v] for i, v in enumerate(g[:-1])))

    def encode_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """One-hot of each layer's (kernel, expand) (all zero for skip), then scaled r."""
        n = len(genomes)
        skip = np.array([c[0] is None for c in self._choices])
        mb = genomes[:, :-1] - skip[None, :]                 # MBConv index, -1 for skip
        onehot = np.eye(len(MBCONVS) + 1, dtype=np.float32)[mb][:, :, :-1]  # -1 row → zeros
        res = np.asarray(self.resolutions, np.float32)[genomes[:, -1]]
        lo, hi = self.resolutions[0], self.resolutions[-1]
        return np.concatenate([onehot.reshape(n, -1), ((res - lo) / max(hi - lo, 1))[:, None]], 1)

    # ------------------------------------------------------------------ operators
    def _fixed_ops(self, r: int):
        h = -(-r // 2)
        hw = h
        for _, _, s in STAGES:
            hw = -(-hw // s)
        pre = [OpSpec("Conv", (r, r, self.in_chans), (h, h, STEM), family="proxyless"),
               OpSpec("expanded_conv", (h, h, STEM), (h, h, FIRST),
                      (("expand", 1), ("kernel", 3), ("stride", 1), ("idskip", 0)), "proxyless")]
        post = [OpSpec("Conv_1", (hw, hw, STAGES[-1][0]), (hw, hw, FINAL), family="proxyless"),
                OpSpec("Logits", (hw, hw, FINAL), (self.num_classes,), family="proxyless")]
        return pre, post, h

    @staticmethod
    def _layer_op(hw: int, layer: int, k: int, e: int) -> OpSpec:
        cin, cout, stride, _ = LAYERS[layer]
        out = -(-hw // stride)
        return OpSpec("expanded_conv", (hw, hw, cin), (out, out, cout),
                      (("expand", e), ("kernel", k), ("stride", stride),
                       ("idskip", int(stride == 1 and cin == cout))), "proxyless")

    def _build_op_index(self) -> None:
        ids: dict[OpSpec, int] = {}
        nr, width = len(self.resolutions), len(MBCONVS) + 1
        self._fixed_idx = np.zeros((nr, 4), np.int32)
        self._layer_idx = np.zeros((nr, len(LAYERS), width), np.int32)
        self._layer_ops: list[list[list[OpSpec | None]]] = []
        for ri, r in enumerate(self.resolutions):
            pre, post, hw = self._fixed_ops(r)
            for c, op in enumerate(pre + post):
                self._fixed_idx[ri, c] = ids.setdefault(op, len(ids))
            per_r = []
            for i, choices in enumerate(self._choices):
                ops = [None if c is None else self._layer_op(hw, i, *c) for c in choices]
                per_r.append(ops)
                for v, op in enumerate(ops):
                    self._layer_idx[ri, i, v] = -1 if op is None else ids.setdefault(op, len(ids))
                hw = -(-hw // LAYERS[i][2])
            self._layer_ops.append(per_r)
        self.op_list: list[OpSpec] = list(ids)
        self.null_op = len(self.op_list)
        self._layer_idx[self._layer_idx < 0] = self.null_op
        self._costs: dict[str, np.ndarray] | None = None

    @staticmethod
    def _costing(op: OpSpec) -> OpSpec:
        """The same op with ``expand`` as hidden channels, as ``op_cost`` counts them."""
        if op.kind != "expanded_conv":
            return op
        mid = round(op.input[2] * op.attr("expand"))
        attrs = tuple((k, mid if k == "expand" else v) for k, v in op.attrs)
        return OpSpec(op.kind, op.input, op.output, attrs, op.family)

    def cost_vectors(self) -> dict[str, np.ndarray]:
        """Per-op ``macs``, ``params``, ``act`` aligned with ``op_list``, plus 0 for ``null_op``."""
        if self._costs is None:
            c = np.array([op_cost(self._costing(op)) for op in self.op_list] + [(0, 0, 0)],
                         dtype=np.float64)
            self._costs = {"macs": c[:, 0], "params": c[:, 1], "act": c[:, 2]}
        return self._costs

    def op_indices(self, genomes: np.ndarray) -> np.ndarray:
        """(N, 4 fixed + 21 layers) op ids; skipped layers point at ``null_op``."""
        r = genomes[:, -1].astype(np.intp)
        layers = self._layer_idx[r[:, None], np.arange(len(LAYERS))[None, :], genomes[:, :-1]]
        return np.concatenate([self._fixed_idx[r], layers], 1)

    def ops(self, arch: ProxylessArch) -> list[OpSpec]:
        ri = self.resolutions.index(arch.r)
        pre, post, _ = self._fixed_ops(arch.r)
        mid = [self._layer_ops[ri][i][self._choices[i].index(o)] for i, o in enumerate(arch.ops)]
        return pre + [op for op in mid if op is not None] + post

    def build(self, arch: ProxylessArch, num_classes: int | None = None):
        """The network is the chain of its operators' modules (fresh weights)."""
        from torch import nn

        ops = self.ops(arch)
        if num_classes is not None and num_classes != self.num_classes:
            last = ops[-1]
            ops[-1] = OpSpec(last.kind, last.input, (num_classes,), last.attrs, last.family)
        return nn.Sequential(*[op.build() for op in ops])

    def largest(self) -> ProxylessArch:
        return ProxylessArch(self.resolutions[-1], tuple((7, 6) for _ in LAYERS))

    def smallest(self) -> ProxylessArch:
        return ProxylessArch(self.resolutions[0], tuple(c[0] for c in self._choices))


# ---------------------------------------------------------------------------- op modules
@OP_BUILDERS.register("proxyless/Conv")
def _stem(op: OpSpec):
    from hwnas.nn.blocks import ConvBNAct

    return ConvBNAct(op.input[2], op.output[2], 3, 2, act="relu")


@OP_BUILDERS.register("proxyless/expanded_conv")
def _mbconv(op: OpSpec):
    from hwnas.nn.blocks import InvertedResidual

    cin = op.input[2]
    return InvertedResidual(cin, op.output[2], round(cin * op.attr("expand")), op.attr("kernel"),
                            op.attr("stride"), "relu", False)


@OP_BUILDERS.register("proxyless/Conv_1")
def _final(op: OpSpec):
    from hwnas.nn.blocks import ConvBNAct

    return ConvBNAct(op.input[2], op.output[2], 1, act="relu")


@OP_BUILDERS.register("proxyless/Logits")
def _logits(op: OpSpec):
    from torch import nn

    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(op.input[-1], op.output[0]))


def _layer_view(space: ProxylessSpace, r_index: int) -> LayerView:
    cands = [space._layer_idx[r_index, i, :len(c)] for i, c in enumerate(space._choices)]
    labels = [[_label(c) for c in choices] for choices in space._choices]
    return gene_per_layer_view(space, r_index, 2, cands, labels)


PLUGIN = register_space(SpacePlugin(name="proxyless", space=ProxylessSpace,
                                    layer_view=_layer_view))
