"""Once-for-All MobileNetV3: 5 elastic stages (depth, kernel, expand) and an elastic resolution.

Figures follow the published space: stage widths 24/40/80/112/160 at width 1.0 (32/48/96/136/192
at 1.2), strides 2/2/2/1/2, SE in stages 2, 4 and 5, hswish from stage 3 on, a 3×3 stride-2 stem,
a fixed first block (expand 1), a final 1×1 expand to 6× the last width, global pooling, a
1×1 feature mix and the classifier.

Arch grammar (the canonical string)::

    r<res>-k<stage>.<stage>.<stage>.<stage>.<stage>-e<stage>.<stage>.<stage>.<stage>.<stage>

Each ``<stage>`` has one digit per active block (its depth is the digit count): kernels from
{3,5,7} after ``k``, expand ratios from {3,4,6} after ``e``. Example:
``r176-k35.357.3577.35.357-e34.634.3466.44.666``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import ArchError, SpaceError
from hwnas.nn.widths import make_divisible
from hwnas.spaces._base import OpSpec, SearchSpace, positive_int, resolution_list
from hwnas.spaces._cost import op_cost
from hwnas.spaces._layers import LayerView
from hwnas.spaces._plugin import CheckpointFormat, SpaceConfig, SpacePlugin, register_space

__all__ = ["OFAArch", "OFAMobileNetV3Space", "PLUGIN"]

BASE_WIDTHS = (24, 40, 80, 112, 160)
STRIDES = (2, 2, 2, 1, 2)
ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
USE_SE = (False, True, False, True, True)
N_STAGES, MAX_DEPTH = 5, 4
N_SLOTS = N_STAGES * MAX_DEPTH


def _gene(v) -> int:
    """An integer choice from JSON or a string of digits (a float or a bool is an error)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer, str)):
        raise TypeError(f"not an integer: {v!r}")
    return int(v)


@dataclass(frozen=True)
class OFAArch:
    """One subnet: resolution ``r`` and, per stage, the kernel and expand of each active block."""

    r: int
    ks: tuple[tuple[int, ...], ...]
    e: tuple[tuple[int, ...], ...]

    @property
    def d(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.ks)

    def __str__(self) -> str:
        k = ".".join("".join(map(str, s)) for s in self.ks)
        e = ".".join("".join(map(str, s)) for s in self.e)
        return f"r{self.r}-k{k}-e{e}"

    def to_json(self) -> dict:
        """OFA-style dict (``ks[20]``, ``e[20]``, ``d[5]``, ``r``); unused slots hold 0."""
        ks, es = [0] * N_SLOTS, [0] * N_SLOTS
        for s, (sk, se) in enumerate(zip(self.ks, self.e)):
            for j, (k, x) in enumerate(zip(sk, se)):
                ks[s * MAX_DEPTH + j], es[s * MAX_DEPTH + j] = k, x
        return {"space": "ofa-mbv3", "arch": str(self), "r": self.r, "d": list(self.d),
                "ks": ks, "e": es}


class OFAMobileNetV3Space(SearchSpace):
    """The OFA MobileNetV3 space. ``resolutions`` and ``width_mult`` are configurable."""

    name = "ofa-mbv3"
    kernels_follow_operators = True
    kernels = (3, 5, 7)
    expands = (3, 4, 6)
    depths = (2, 3, 4)
    strides, acts, use_se = STRIDES, ACTS, USE_SE      # per stage

    def __init__(self, width_mult: float = 1.0, resolutions: Sequence[int] | None = None,
                 num_classes: int = 1000, in_chans: int = 3) -> None:
        import math

        if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or \
                not math.isfinite(width_mult) or not 0 < width_mult <= 8:
            raise SpaceError(f"ofa-mbv3 width_mult must be a number in (0, 8], got {width_mult!r}")
        self.width_mult = float(width_mult)
        self.resolutions = resolution_list("ofa-mbv3", resolutions, range(128, 225, 4), 8)
        self.num_classes = positive_int("ofa-mbv3", "num_classes", num_classes)
        self.in_chans = positive_int("ofa-mbv3", "in_chans", in_chans, 64)
        w = self.width_mult
        self.stem_chs = make_divisible(16 * w)
        self.widths = tuple(make_divisible(c * w) for c in BASE_WIDTHS)
        self.final_chs = make_divisible(960 * w)
        self.mix_chs = make_divisible(1280 * w)
        self._build_op_index()

    def config(self) -> dict:
        return {"name": self.name, "width_mult": self.width_mult,
                "resolutions": list(self.resolutions), "num_classes": self.num_classes,
                "in_chans": self.in_chans}

    # ------------------------------------------------------------------ arch I/O
    def parse(self, text: str) -> OFAArch:
        """Parse the canonical string; errors name the field that is wrong."""
        parts = text.strip().split("-")
        names = ("resolution", "kernel", "expand")
        if len(parts) != 3 or [p[:1] for p in parts] != ["r", "k", "e"]:
            raise ArchError(f"malformed ofa-mbv3 arch {text!r}: expected r<res>-k<stages>-e<stages>"
                            f" like r176-k35.357.3577.35.357-e34.634.3466.44.666")
        for name, part in zip(names, parts):
            body = part[1:]
            if not body or not all(c in "0123456789" or (c == "." and name != "resolution")
                                   for c in body):
                raise ArchError(f"arch {text!r}: field '{name}' ({part!r}) is not "
                                f"{'an integer' if name == 'resolution' else 'digits and dots'}")
        ks = self._parse_field(parts[1][1:], "kernel", self.kernels, text)
        es = self._parse_field(parts[2][1:], "expand", self.expands, text)
        for s, (a, b) in enumerate(zip(ks, es), 1):
            if len(a) != len(b):
                raise ArchError(f"arch {text!r}: stage {s} has {len(a)} kernels but "
                                f"{len(b)} expand ratios")
        return self.make(int(parts[0][1:]), ks, es)

    def _parse_field(self, text: str, field: str, allowed, whole: str):
        stages = text.split(".")
        if len(stages) != N_STAGES:
            raise ArchError(f"arch {whole!r}: {field} has {len(stages)} stages, expected {N_STAGES}")
        out = []
        for s, digits in enumerate(stages, 1):
            vals = tuple(int(c) for c in digits)
            bad = [v for v in vals if v not in allowed]
            if bad:
                raise ArchError(f"arch {whole!r}: {field} {bad[0]} in stage {s} not in {list(allowed)}")
            out.append(vals)
        return tuple(out)

    def make(self, r: int, ks, es) -> OFAArch:
        """Build and validate an arch from per-stage lists."""
        try:
            ks = tuple(tuple(_gene(v) for v in s) for s in ks)
            es = tuple(tuple(_gene(v) for v in s) for s in es)
        except (TypeError, ValueError):
            raise ArchError("an ofa-mbv3 arch's kernels and expand ratios are lists of "
                            "integers per stage") from None
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) \
                or r not in self.resolutions:
            lo, hi = self.resolutions[0], self.resolutions[-1]
            raise ArchError(f"resolution {r} not in this space ({lo}..{hi}, "
                            f"{len(self.resolutions)} values)")
        if len(ks) != N_STAGES or len(es) != N_STAGES:
            raise ArchError(f"an ofa-mbv3 arch has {N_STAGES} stages")
        for s, (a, b) in enumerate(zip(ks, es), 1):
            if len(a) not in self.depths:
                raise ArchError(f"depth {len(a)} of stage {s} not in {list(self.depths)}")
            if len(a) != len(b):
                raise ArchError(f"stage {s}: {len(a)} kernels but {len(b)} expand ratios")
            if any(k not in self.kernels for k in a):
                raise ArchError(f"stage {s}: kernel not in {list(self.kernels)}: {a}")
            if any(x not in self.expands for x in b):
                raise ArchError(f"stage {s}: expand not in {list(self.expands)}: {b}")
        return OFAArch(r, ks, es)

    def from_json(self, obj: dict) -> OFAArch:
        """An arch from ``arch.json`` (its ``arch`` string) or from OFA's dict form: ``ks[20]``,
        ``e[20]``, ``d[5]`` and ``r`` (an integer, or DyNAS-T's one-element list). Slots past a
        stage's depth are ignored, whatever they hold (OFA writes 0 or any choice there)."""
        if not isinstance(obj, dict):
            raise ArchError(f"an ofa-mbv3 arch JSON is an object, got {type(obj).__name__}")
        if "arch" in obj and isinstance(obj["arch"], str):
            return self.parse(obj["arch"])
        if obj.get("wid") is not None:
            raise ArchError(f"arch JSON has an elastic width 'wid' {obj['wid']!r}; this space "
                            "has none (its width is the configuration's width_mult)")
        try:
            r = obj["r"]
            if isinstance(r, (list, tuple)) and len(r) == 1:
                r = r[0]
            r, d, ks, es = _gene(r), list(obj["d"]), list(obj["ks"]), list(obj["e"])
            d = [_gene(v) for v in d]
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchError(f"arch JSON lacks a valid field: {exc}") from None
        if len(d) != N_STAGES or len(ks) != N_SLOTS or len(es) != N_SLOTS:
            raise ArchError(f"arch JSON needs d[{N_STAGES}], ks[{N_SLOTS}] and e[{N_SLOTS}], "
                            f"got d[{len(d)}], ks[{len(ks)}], e[{len(es)}]")
        for s, depth in enumerate(d, 1):
            if depth not in self.depths:
                raise ArchError(f"depth {depth} of stage {s} not in {list(self.depths)}")
        sl = [slice(s * MAX_DEPTH, s * MAX_DEPTH + d[s]) for s in range(N_STAGES)]
        return self.make(r, [ks[x] for x in sl], [es[x] for x in sl])

    # ------------------------------------------------------------------ genomes
    # genome row: ks index [20] | e index [20] | depth index [5] | resolution index [1]
    @property
    def genome_len(self) -> int:
        return 2 * N_SLOTS + N_STAGES + 1

    def choice_sizes(self) -> np.ndarray:
        """Number of choices of each genome column (for mutation)."""
        return np.array([len(self.kernels)] * N_SLOTS + [len(self.expands)] * N_SLOTS
                        + [len(self.depths)] * N_STAGES + [len(self.resolutions)])

    def sample_genomes(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return (rng.random((n, self.genome_len)) * self.choice_sizes()).astype(np.int16)

    def to_genomes(self, archs: Sequence[OFAArch]) -> np.ndarray:
        g = np.zeros((len(archs), self.genome_len), np.int16)
        k_ix = {k: i for i, k in enumerate(self.kernels)}
        e_ix = {x: i for i, x in enumerate(self.expands)}
        d_ix = {d: i for i, d in enumerate(self.depths)}
        r_ix = {r: i for i, r in enumerate(self.resolutions)}
        for n, a in enumerate(archs):
            for s in range(N_STAGES):
                for j, (k, x) in enumerate(zip(a.ks[s], a.e[s])):
                    g[n, s * MAX_DEPTH + j] = k_ix[k]
                    g[n, N_SLOTS + s * MAX_DEPTH + j] = e_ix[x]
                g[n, 2 * N_SLOTS + s] = d_ix[len(a.ks[s])]
            g[n, -1] = r_ix[a.r]
        return g

    def from_genome(self, genome: np.ndarray) -> OFAArch:
        g = [int(v) for v in genome]
        ks, es = [], []
        for s in range(N_STAGES):
            d = self.depths[g[2 * N_SLOTS + s]]
            base = s * MAX_DEPTH
            ks.append(tuple(self.kernels[g[base + j]] for j in range(d)))
            es.append(tuple(self.expands[g[N_SLOTS + base + j]] for j in range(d)))
        return OFAArch(self.resolutions[g[-1]], tuple(ks), tuple(es))

    def active_mask(self, genomes: np.ndarray) -> np.ndarray:
        """(N, 20) bool: which block slots the depth genes switch on."""
        depth = np.asarray(self.depths)[genomes[:, 2 * N_SLOTS:2 * N_SLOTS + N_STAGES]]
        return np.arange(MAX_DEPTH)[None, None, :] < depth[:, :, None]  # N,5,4
        # reshaped by callers to N,20

    def canonical_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Zero the genes of inactive slots so that equal networks have equal rows."""
        g = genomes.copy()
        mask = self.active_mask(g).reshape(len(g), N_SLOTS)
        g[:, :N_SLOTS] *= mask
        g[:, N_SLOTS:2 * N_SLOTS] *= mask
        return g

    def mutate_genomes(self, rng: np.random.Generator, genomes: np.ndarray,
                       prob: float = 0.1, resolution_prob: float = 0.5) -> np.ndarray:
        """Resample each choice with ``prob`` (the resolution with ``resolution_prob``)."""
        p = np.full(self.genome_len, prob)
        p[-1] = resolution_prob
        flip = rng.random(genomes.shape) < p
        fresh = self.sample_genomes(rng, len(genomes))
        return np.where(flip, fresh, genomes).astype(np.int16)

    def crossover_genomes(self, rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Uniform crossover: each choice from either parent with equal chance."""
        return np.where(rng.random(a.shape) < 0.5, a, b).astype(np.int16)

    def encode_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """One-hot kernel and expand per slot (zero when inactive), one-hot depth, scaled r."""
        n = len(genomes)
        mask = self.active_mask(genomes).reshape(n, N_SLOTS, 1)
        k1 = np.eye(len(self.kernels), dtype=np.float32)[genomes[:, :N_SLOTS]] * mask
        e1 = np.eye(len(self.expands), dtype=np.float32)[genomes[:, N_SLOTS:2 * N_SLOTS]] * mask
        d1 = np.eye(len(self.depths), dtype=np.float32)[genomes[:, 2 * N_SLOTS:-1]]
        res = np.asarray(self.resolutions, np.float32)[genomes[:, -1]]
        lo, hi = self.resolutions[0], self.resolutions[-1]
        r = ((res - lo) / max(hi - lo, 1))[:, None]
        return np.concatenate([k1.reshape(n, -1), e1.reshape(n, -1), d1.reshape(n, -1), r], 1)

    # ------------------------------------------------------------------ operators
    def _block_op(self, hw: int, s: int, j: int, k: int, x: int) -> OpSpec:
        """Block ``j`` of stage ``s``; ``hw`` is the stage's input size."""
        if j == 0:
            in_chs = self.widths[s - 1] if s > 0 else self.stem_chs
            stride = STRIDES[s]
        else:
            in_chs, stride, hw = self.widths[s], 1, -(-hw // STRIDES[s])
        out_hw = -(-hw // stride)
        mid = make_divisible(round(in_chs * x))
        out = self.widths[s]
        return OpSpec("expanded_conv", (hw, hw, in_chs), (out_hw, out_hw, out),
                      (("expand", mid), ("kernel", k), ("stride", stride),
                       ("idskip", int(stride == 1 and in_chs == out)),
                       ("se", int(USE_SE[s])), ("hs", int(ACTS[s] == "hswish"))))

    def _fixed_ops(self, r: int) -> tuple[list[OpSpec], list[OpSpec], int]:
        h = -(-r // 2)
        head_in = h
        for s in STRIDES:
            head_in = -(-head_in // s)
        c0, cl, cf, cm = self.stem_chs, self.widths[-1], self.final_chs, self.mix_chs
        pre = [OpSpec("Conv", (r, r, self.in_chans), (h, h, c0)),
               OpSpec("expanded_conv", (h, h, c0), (h, h, c0),
                      (("expand", c0), ("kernel", 3), ("stride", 1), ("idskip", 1),
                       ("se", 0), ("hs", 0)))]
        post = [OpSpec("Conv_1", (head_in, head_in, cl), (head_in, head_in, cf)),
                OpSpec("AvgPool2D", (head_in, head_in, cf), (1, 1, cf)),
                OpSpec("Conv_2", (1, 1, cf), (1, 1, cm)),
                OpSpec("Logits", (1, 1, cm), (self.num_classes,))]
        return pre, post, h

    def _build_op_index(self) -> None:
        """Number every operator once; genomes then map to op ids by array lookups."""
        ids: dict[OpSpec, int] = {}
        nr, nk, ne = len(self.resolutions), len(self.kernels), len(self.expands)
        self._fixed_idx = np.zeros((nr, 6), np.int32)
        self._block_idx = np.zeros((nr, N_SLOTS, nk, ne), np.int32)
        for ri, r in enumerate(self.resolutions):
            pre, post, hw = self._fixed_ops(r)
            for c, op in enumerate(pre + post):
                self._fixed_idx[ri, c] = ids.setdefault(op, len(ids))
            for s in range(N_STAGES):
                for j in range(MAX_DEPTH):
                    for ki, k in enumerate(self.kernels):
                        for ei, x in enumerate(self.expands):
                            op = self._block_op(hw, s, j, k, x)
                            self._block_idx[ri, s * MAX_DEPTH + j, ki, ei] = ids.setdefault(op, len(ids))
                hw = -(-hw // STRIDES[s])
        self.op_list: list[OpSpec] = list(ids)
        self._costs: dict[str, np.ndarray] | None = None
        self.null_op = len(self.op_list)  # index of a zero entry appended by consumers

    def op_indices(self, genomes: np.ndarray) -> np.ndarray:
        """(N, 26) op ids of each arch; inactive slots point at ``null_op``."""
        n = len(genomes)
        r = genomes[:, -1].astype(np.intp)
        slot = np.arange(N_SLOTS)[None, :]
        blocks = self._block_idx[r[:, None], slot, genomes[:, :N_SLOTS], genomes[:, N_SLOTS:2 * N_SLOTS]]
        blocks = np.where(self.active_mask(genomes).reshape(n, N_SLOTS), blocks, self.null_op)
        return np.concatenate([self._fixed_idx[r], blocks], 1)

    def op_ids_at(self, r_index: int) -> np.ndarray:
        return np.unique(np.concatenate([self._fixed_idx[r_index], self._block_idx[r_index].ravel()]))

    def cost_vectors(self) -> dict[str, np.ndarray]:
        """Per-op ``macs``, ``params`` and ``act`` (peak activation elements), aligned with
        ``op_list`` plus a trailing zero for ``null_op``."""
        if self._costs is None:
            c = np.array([op_cost(op) for op in self.op_list] + [(0, 0, 0)], dtype=np.float64)
            self._costs = {"macs": c[:, 0], "params": c[:, 1], "act": c[:, 2]}
        return self._costs

    def ops(self, arch: OFAArch) -> list[OpSpec]:
        """The operators of ``arch`` in execution order."""
        pre, post, hw = self._fixed_ops(arch.r)
        out = list(pre)
        for s in range(N_STAGES):
            for j, (k, x) in enumerate(zip(arch.ks[s], arch.e[s])):
                out.append(self._block_op(hw, s, j, k, x))
            hw = -(-hw // STRIDES[s])
        return out + post

    # ------------------------------------------------------------------ networks
    def block_configs(self, arch: OFAArch):
        from hwnas.nn.mobilenetv3 import BlockConfig

        first = BlockConfig(self.stem_chs, self.stem_chs, self.stem_chs, 3, 1, "relu", False)
        blocks, in_chs = [], self.stem_chs
        for s in range(N_STAGES):
            for j, (k, x) in enumerate(zip(arch.ks[s], arch.e[s])):
                blocks.append(BlockConfig(in_chs, self.widths[s], make_divisible(round(in_chs * x)),
                                          k, STRIDES[s] if j == 0 else 1, ACTS[s], USE_SE[s]))
                in_chs = self.widths[s]
        return first, blocks

    def build(self, arch: OFAArch, num_classes: int | None = None):
        """A plain (static) torch module for ``arch`` with fresh weights."""
        from hwnas.nn.mobilenetv3 import MobileNetV3

        first, blocks = self.block_configs(arch)
        return MobileNetV3(self.in_chans, self.stem_chs, first, blocks, self.final_chs,
                           self.mix_chs, num_classes or self.num_classes)

    def largest(self) -> OFAArch:
        return self.make(self.resolutions[-1], [(7,) * 4] * 5, [(6,) * 4] * 5)

    def smallest(self) -> OFAArch:
        return self.make(self.resolutions[0], [(3,) * 2] * 5, [(3,) * 2] * 5)


def _layer_view(space: OFAMobileNetV3Space, r_index: int) -> LayerView:
    """20 block slots × the 9 (kernel, expand) pairs; slots past the minimum depth add a *skip*
    candidate. A stage's depth is the minimum depth plus its leading run of non-skipped slots,
    so a skip followed by a block drops that block (the only choice the view cannot express
    exactly; it never lowers latency, so the lower bound stays exact): each stage is a run."""
    nk, ne = len(space.kernels), len(space.expands)
    g = np.zeros((nk * ne, space.genome_len), np.int16)
    for c in range(nk * ne):
        g[c, :N_SLOTS], g[c, N_SLOTS:2 * N_SLOTS] = c // ne, c % ne
    g[:, 2 * N_SLOTS:2 * N_SLOTS + N_STAGES] = len(space.depths) - 1
    g[:, -1] = r_index
    ids = space.op_indices(g)                                 # (9, 6 fixed + 20 slots)
    min_d = min(space.depths)
    cands, labels = [], []
    pairs = [f"k{k}e{e}" for k in space.kernels for e in space.expands]
    for slot in range(N_SLOTS):
        skippable = slot % MAX_DEPTH >= min_d
        cands.append(list(ids[:, 6 + slot]) + ([space.null_op] if skippable else []))
        labels.append(pairs + (["skip"] if skippable else []))

    def to_genome(choice: list[int]) -> np.ndarray:
        out = np.zeros(space.genome_len, np.int16)
        for s in range(N_STAGES):
            d = min_d
            for j in range(MAX_DEPTH):
                c = choice[s * MAX_DEPTH + j]
                if c >= nk * ne:                              # skip: the stage ends here
                    break
                out[s * MAX_DEPTH + j], out[N_SLOTS + s * MAX_DEPTH + j] = c // ne, c % ne
                d = max(d, j + 1)
            out[2 * N_SLOTS + s] = space.depths.index(d)
        out[-1] = r_index
        return out

    def to_genomes(choices: np.ndarray) -> np.ndarray:          # to_genome of each row, at once
        n = len(choices)
        block = (choices < nk * ne).reshape(n, N_STAGES, MAX_DEPTH)
        depth = np.maximum(np.cumprod(block, 2).sum(2), min_d)           # leading blocks
        active = (np.arange(MAX_DEPTH)[None, None, :] < depth[:, :, None]).reshape(n, N_SLOTS)
        out = np.zeros((n, space.genome_len), np.int16)
        out[:, :N_SLOTS] = np.where(active, choices // ne, 0)
        out[:, N_SLOTS:2 * N_SLOTS] = np.where(active, choices % ne, 0)
        out[:, 2 * N_SLOTS:2 * N_SLOTS + N_STAGES] = np.searchsorted(space.depths, depth)
        out[:, -1] = r_index
        return out

    def from_genome(genome: np.ndarray) -> list[int]:
        active = space.active_mask(genome[None]).reshape(N_SLOTS)
        return [int(genome[i]) * ne + int(genome[N_SLOTS + i]) if active[i] else nk * ne
                for i in range(N_SLOTS)]

    return LayerView(space, r_index, list(ids[0, :2]), cands, list(ids[0, 2:6]), labels, to_genome,
                     from_genome, [s for s in range(N_STAGES) for _ in range(MAX_DEPTH)],
                     to_genomes)


def _supernet(space: OFAMobileNetV3Space):
    from hwnas.nn.supernet import OFASupernet

    return OFASupernet(space)


def _ofa_recognises(state) -> bool:
    from hwnas.spaces import ofa_checkpoint

    return ofa_checkpoint.recognises(state)


def _ofa_load(plugin: SpacePlugin, state, where: str):
    from hwnas.spaces import ofa_checkpoint

    return ofa_checkpoint.ofa_supernet(plugin, state, where)


#: Once-for-All's published supernet files (``hwnas.spaces.ofa_checkpoint``)
OFA_CHECKPOINT = CheckpointFormat("once-for-all", "Once-for-All checkpoint", _ofa_recognises,
                                  _ofa_load)

PLUGIN = register_space(SpacePlugin(
    name="ofa-mbv3",
    space=OFAMobileNetV3Space,
    configs={
        "fmnist": SpaceConfig(
            {"width_mult": 1.0, "resolutions": (16, 20, 24, 28), "num_classes": 10,
             "in_chans": 1},
            accuracy_sources=("supernet",), default_checkpoint="ofa-mbv3-fmnist",
            description="the shipped small configuration: Fashion-MNIST at 16-28 px, with a "
                        "supernet trained here"),
        "imagenet": SpaceConfig(
            {"width_mult": 1.2, "resolutions": (160, 176, 192, 208, 224), "num_classes": 1000,
             "in_chans": 3},
            accuracy_sources=("ofa-predictor", "measured"),
            description="Once-for-All's published w1.2 supernet's space: ImageNet, 1000 "
                        "classes, 160-224 px in steps of 16 (the steps of OFA's accuracy "
                        "predictor and tutorial)"),
        "imagenet-w10": SpaceConfig(
            {"width_mult": 1.0, "resolutions": (224,), "num_classes": 1000, "in_chans": 3},
            accuracy_sources=("measured", "ofa-predictor"),
            description="the w1.0 supernet's space at 224 px: the subnets whose ImageNet top-1 "
                        "DyNAS-T measured"),
    },
    default_config="fmnist",
    supernet=_supernet,
    layer_view=_layer_view,
    checkpoint_formats=(OFA_CHECKPOINT,),
))
