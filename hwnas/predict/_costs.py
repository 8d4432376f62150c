"""Per-arch cost features of a space, for predictors that learn from a few measured networks.

Every space gives MACs, parameters, depth (kernels launched) and activation traffic (input
plus output elements of every operator); a source device with a latency table for the space
adds its table-sum prediction. Each is a sum over the arch's operators, so a whole population
costs one gather per feature. Features are standardised with the statistics of a fixed random
sample of the space, so a fitted model depends on its k samples only through its weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hwnas.errors import TableError

__all__ = ["CostFeatures", "BASE_COSTS"]

BASE_COSTS = ("macs", "params", "depth", "traffic")
REFERENCE_SAMPLE = 2048            # random archs (seed 0) that set the standardisation


def _op_vectors(space) -> dict[str, np.ndarray]:
    vec = space.cost_vectors()
    depth = np.ones(len(space.op_list) + 1)
    depth[-1] = 0.0
    return {"macs": vec["macs"], "params": vec["params"], "depth": depth,
            "traffic": space.traffic_vector()}


@dataclass
class CostFeatures:
    """Named per-operator vectors (``op_list`` order plus a trailing 0 for ``null_op``) whose
    sums over an arch's operators are its cost features, then ``extra`` features (genomes →
    (N, E), e.g. source devices' latencies learnt from their measured networks), with their
    standardisation."""

    names: tuple[str, ...]
    op_vectors: np.ndarray            # (C_op, n_ops + 1)
    mean: np.ndarray                  # (C,) of the raw features over the reference sample
    scale: np.ndarray
    log_mean: np.ndarray              # (C,) of their logarithms
    log_scale: np.ndarray
    extra: Callable[[np.ndarray], np.ndarray] | None = None

    @classmethod
    def build(cls, space, tables: dict[str, np.ndarray] | None = None,
              extra: Callable[[np.ndarray], np.ndarray] | None = None,
              extra_names: tuple[str, ...] = ()) -> "CostFeatures":
        """The space's own costs plus ``tables`` (source name → per-op latency ms) and
        ``extra`` (named ``extra_names``)."""
        vecs = _op_vectors(space)
        n = len(space.op_list) + 1
        for name, ms in (tables or {}).items():
            ms = np.asarray(ms, dtype=np.float64)
            if ms.shape != (n,):
                raise TableError(f"table of source '{name}' has {len(ms)} entries, the space "
                                 f"needs {n}")
            vecs[f"table:{name}"] = ms
        names = tuple(vecs) + tuple(extra_names if extra is not None else ())
        op_vectors = np.stack([vecs[k] for k in vecs])
        ref = space.sample_genomes(np.random.default_rng(0), REFERENCE_SAMPLE)
        zeros = np.zeros(0)
        out = cls(names, op_vectors, zeros, zeros, zeros, zeros, extra)
        raw = out.raw(space, ref)
        logs = np.log(np.maximum(raw, 1e-12))
        out.mean, out.scale, out.log_mean, out.log_scale = (raw.mean(0), raw.std(0),
                                                            logs.mean(0), logs.std(0))
        return out

    def raw(self, space, genomes: np.ndarray) -> np.ndarray:
        """(N, C) cost features of archs, in their own units."""
        ids = space.op_indices(genomes)
        parts = [self.op_vectors[:, ids].sum(2).T]
        if self.extra is not None:
            parts.append(self.extra(genomes))
        return np.concatenate(parts, 1)

    @property
    def varying(self) -> np.ndarray:
        """Indices of the features that differ between archs of the space."""
        return np.flatnonzero(self.scale > 1e-9 * np.maximum(np.abs(self.mean), 1e-30))

    def standard(self, raw: np.ndarray) -> np.ndarray:
        """Raw features, standardised (constant ones give 0)."""
        return (raw - self.mean) / np.where(self.scale > 0, self.scale, 1.0)

    def log_standard(self, raw: np.ndarray) -> np.ndarray:
        logs = np.log(np.maximum(raw, 1e-12))
        return (logs - self.log_mean) / np.where(self.log_scale > 0, self.log_scale, 1.0)

    def to_json(self) -> dict:
        return {"names": list(self.names), "op_vectors": self.op_vectors, "mean": self.mean,
                "scale": self.scale, "log_mean": self.log_mean, "log_scale": self.log_scale,
                "extra": self.extra is not None}

    @classmethod
    def from_json(cls, obj: dict, space,
                  extra: Callable[[np.ndarray], np.ndarray] | None = None) -> "CostFeatures":
        from hwnas.predict._store import array

        names = tuple(str(n) for n in obj["names"])
        n_ops = len(space.op_list) + 1
        vecs = array(obj, "op_vectors")
        if vecs.size % n_ops:
            raise TableError(f"stored cost features do not cover the space's {n_ops} operators")
        vecs = vecs.reshape(-1, n_ops)
        if (extra is None) != (len(vecs) == len(names)):
            raise TableError("stored cost features and their source devices disagree")
        return cls(names, vecs, array(obj, "mean"), array(obj, "scale"), array(obj, "log_mean"),
                   array(obj, "log_scale"), extra)
