"""The two nouns every search space speaks: ``OpSpec`` and ``SearchSpace``."""
from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from hwnas.errors import TableError
from hwnas.nn.op_builders import OP_BUILDERS

__all__ = ["OpSpec", "SearchSpace", "OP_BUILDERS", "resolution_list", "positive_int"]


def resolution_list(space: str, value, default, minimum: int) -> tuple[int, ...]:
    """A space's input sizes: ``default`` when not given, else integers ≥ ``minimum`` (an
    empty list, a fraction or a string is an error, never the defaults)."""
    from hwnas.errors import SpaceError

    if value is None:
        value = default
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise SpaceError(f"{space} resolutions must be a list of integers, got {value!r}")
    vals = list(value)
    if not vals:
        raise SpaceError(f"{space} resolutions must not be empty")
    if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) for r in vals):
        raise SpaceError(f"{space} resolutions must be integers, got {vals}")
    if min(vals) < minimum or max(vals) > 4096:
        raise SpaceError(f"{space} resolutions must lie in [{minimum}, 4096], got {vals}")
    return tuple(sorted(set(int(r) for r in vals)))


def positive_int(space: str, name: str, value, maximum: int = 1_000_000) -> int:
    """A configuration integer in [1, maximum], named in the error."""
    from hwnas.errors import SpaceError

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not 1 <= value <= maximum:
        raise SpaceError(f"{space} {name} must be an integer in [1, {maximum}], got {value!r}")
    return int(value)

_KEY_RE = re.compile(r"^(?P<kind>[A-Za-z_0-9]+)-input:(?P<inp>[0-9]+(?:x[0-9]+)*)"
                     r"-output:(?P<out>[0-9]+(?:x[0-9]+)*)(?P<attrs>(?:-[a-z_]+:-?[0-9]+)*)\Z")


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split("x"))


@dataclass(frozen=True, order=True)
class OpSpec:
    """One operator configuration with its input shape.

    ``key`` follows the published lookup tables, for example
    ``expanded_conv-input:14x14x80-output:14x14x80-expand:240-kernel:5-stride:1-idskip:1-se:0-hs:1``.
    Shapes are H×W×C (channels last in the key, as those tables write them). ``family`` picks
    the module builder and is not part of the key: a table belongs to one space.
    """

    kind: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    attrs: tuple[tuple[str, int], ...] = ()
    family: str = "mbv3"

    @property
    def key(self) -> str:
        inp = "x".join(map(str, self.input))
        out = "x".join(map(str, self.output))
        return f"{self.kind}-input:{inp}-output:{out}" + "".join(f"-{k}:{v}" for k, v in self.attrs)

    @classmethod
    def from_key(cls, key: str, family: str = "mbv3") -> "OpSpec":
        m = _KEY_RE.match(key)
        if not m:
            raise TableError(f"malformed operator key {key!r}")
        attrs = tuple((k, int(v)) for k, v in
                      (a.split(":") for a in m["attrs"].split("-")[1:]))
        return cls(m["kind"], _shape(m["inp"]), _shape(m["out"]), attrs, family)

    def attr(self, name: str, default: int | None = None) -> int:
        for k, v in self.attrs:
            if k == name:
                return v
        if default is None:
            raise KeyError(f"{self.key} has no attribute '{name}'")
        return default

    @property
    def input_nchw(self) -> tuple[int, ...]:
        """Batch-1 input shape in torch layout."""
        if len(self.input) == 3:
            h, w, c = self.input
            return (1, c, h, w)
        return (1, *self.input)

    def build(self):
        """A tiny torch module computing just this operator (for ONNX → TVM → timing)."""
        from hwnas.nn.ops import build_op

        return build_op(self)

    def __str__(self) -> str:
        return self.key


class SearchSpace(abc.ABC):
    """A family of architectures. Subclasses register in ``hwnas.spaces.SPACES``.

    Populations travel as integer *genome* matrices (one row an arch) so that sampling,
    mutation, crossover, encoding and latency prediction stay vectorised; ``Arch`` objects
    are for the edges (CLI, export, reports).
    """

    name: str = ""
    #: True when a subnet is a chain of its operators that TVM's fusion cannot join (each one
    #: starts with a convolution): then the kernels of the space are those of its operators,
    #: compiled one at a time (``hwnas tune`` relies on it; tests check it on random subnets)
    kernels_follow_operators: bool = False

    # ---- single architectures ----
    @abc.abstractmethod
    def parse(self, text: str) -> Any: ...

    @abc.abstractmethod
    def from_json(self, obj: dict) -> Any: ...

    @abc.abstractmethod
    def ops(self, arch) -> list[OpSpec]: ...

    def all_ops(self) -> set[OpSpec]:
        """Every operator the space can produce (what profiling must cover)."""
        return set(self.op_list)

    @abc.abstractmethod
    def build(self, arch, num_classes: int | None = None): ...

    @abc.abstractmethod
    def config(self) -> dict: ...

    @abc.abstractmethod
    def smallest(self) -> Any:
        """The arch of fewest operations (the cheapest choice everywhere)."""

    @abc.abstractmethod
    def largest(self) -> Any:
        """The arch of most operations (the costliest choice everywhere)."""

    # ---- populations ----
    @abc.abstractmethod
    def sample_genomes(self, rng: np.random.Generator, n: int) -> np.ndarray: ...

    @abc.abstractmethod
    def to_genomes(self, archs: Sequence) -> np.ndarray: ...

    @abc.abstractmethod
    def from_genome(self, genome: np.ndarray) -> Any: ...

    @abc.abstractmethod
    def encode_genomes(self, genomes: np.ndarray) -> np.ndarray: ...

    def input_shape(self, arch) -> tuple[int, int, int, int]:
        """Batch-1 NCHW input of ``arch`` (its resolution ``arch.r`` unless a space fixes it)."""
        return (1, self.in_chans, arch.r, arch.r)

    # ---- costs: sums over ``op_indices`` of ``cost_vectors`` (spaces with an op list) ----
    def flops_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Multiply-adds (MACs) of each arch."""
        return self.cost_vectors()["macs"][self.op_indices(genomes)].sum(1)

    def params_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return self.cost_vectors()["params"][self.op_indices(genomes)].sum(1)

    def peak_act_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Peak activation elements alive at once (float32 bytes = 4×)."""
        return self.cost_vectors()["act"][self.op_indices(genomes)].max(1)

    def depth_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Operators each arch runs (a kernel launch and a memory round trip each)."""
        return (self.op_indices(genomes) != self.null_op).sum(1)

    def traffic_vector(self) -> np.ndarray:
        """Activation elements each operator of ``op_list`` reads and writes (its input plus
        its output), plus a trailing 0 for ``null_op``: the memory traffic a chain of kernels
        cannot avoid, whatever fusion does inside each one."""
        cached = getattr(self, "_traffic", None)
        if cached is None or len(cached) != len(self.op_list) + 1:
            cached = np.array([float(np.prod(op.input)) + float(np.prod(op.output))
                               for op in self.op_list] + [0.0])
            self._traffic = cached
        return cached

    # ---- per-operator values (latency tables): 1-D per op, or 2-D per resolution and op ----
    def op_ids_at(self, r_index: int) -> np.ndarray:
        """Ids (into ``op_list``) of the operators an arch at resolution index ``r_index`` can
        use; every operator unless a space says more precisely."""
        return np.arange(len(self.op_list))

    def op_values(self, genomes: np.ndarray, values: np.ndarray,
                  ids: np.ndarray | None = None) -> np.ndarray:
        """(N, P) the value of each operator position of each arch. ``values`` is per op of
        ``op_list`` plus the ``null_op`` zero (1-D), or one such row per resolution index (2-D,
        a table keyed per resolution: an arch reads the row of its resolution, the last
        gene); ``ids`` are ``op_indices(genomes)`` when already at hand."""
        ids = self.op_indices(genomes) if ids is None else ids
        if values.ndim == 1:
            return values[ids]
        return values[np.asarray(genomes)[:, -1].astype(np.intp)[:, None], ids]

    def traffic_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Activation memory traffic of each arch: input plus output elements of every
        operator it runs (float32 bytes = 4×)."""
        return self.traffic_vector()[self.op_indices(genomes)].sum(1)

    def flops(self, arch) -> float:
        """Multiply-adds (MACs) of one arch."""
        return float(self.flops_genomes(self.to_genomes([arch]))[0])

    def params(self, arch) -> float:
        """Parameters of one arch."""
        return float(self.params_genomes(self.to_genomes([arch]))[0])

    def costs(self, arch) -> dict[str, float]:
        """MACs, parameters, peak activation elements, operator count and activation traffic
        (elements) of one arch."""
        g = self.to_genomes([arch])
        return {"macs": float(self.flops_genomes(g)[0]), "params": float(self.params_genomes(g)[0]),
                "peak_act": float(self.peak_act_genomes(g)[0]),
                "depth": int(self.depth_genomes(g)[0]),
                "traffic": float(self.traffic_genomes(g)[0])}

    # ---- conveniences built on the above ----
    def sample(self, rng: np.random.Generator):
        return self.from_genome(self.sample_genomes(rng, 1)[0])

    def sample_many(self, rng: np.random.Generator, n: int) -> list:
        return [self.from_genome(g) for g in self.sample_genomes(rng, n)]

    def mutate(self, arch, rng: np.random.Generator, **kwargs):
        """One arch through ``mutate_genomes`` (keyword arguments pass through)."""
        return self.from_genome(self.mutate_genomes(rng, self.to_genomes([arch]), **kwargs)[0])

    def crossover(self, a, b, rng: np.random.Generator):
        """One child of two archs through ``crossover_genomes``."""
        g = self.crossover_genomes(rng, self.to_genomes([a]), self.to_genomes([b]))
        return self.from_genome(g[0])

    def encode(self, arch_or_archs) -> np.ndarray:
        """Feature vector(s) for predictors: one row per arch."""
        if isinstance(arch_or_archs, (list, tuple)):
            return self.encode_genomes(self.to_genomes(arch_or_archs))
        return self.encode_genomes(self.to_genomes([arch_or_archs]))[0]
