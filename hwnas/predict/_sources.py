"""What the few-shot predictor learns from: source devices (a ``SourceMatrix``, reduced to
``SourceFactors``) and the new device's own samples (``TargetSamples``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwnas.errors import HwnasError, TableError
from hwnas.predict._genetables import gene_tables

__all__ = ["SourceMatrix", "TargetSamples", "SourceFactors", "split_target", "MIN_SAMPLES",
           "RANKS"]

MIN_SAMPLES = 3          # what hwnas adapt asks for (a fit itself needs 2)
RANKS = (1, 2, 3, 5, 8, 12, 20)


@dataclass(frozen=True)
class SourceMatrix:
    """Latencies (ms) of the same archs (genome rows) on several source devices (columns)."""

    genomes: np.ndarray
    devices: tuple[str, ...]
    latency_ms: np.ndarray

    def __post_init__(self) -> None:
        if self.latency_ms.shape != (len(self.genomes), len(self.devices)):
            raise HwnasError(f"source matrix is {self.latency_ms.shape}, expected "
                             f"({len(self.genomes)}, {len(self.devices)})")
        if not np.all(np.isfinite(self.latency_ms)) or np.any(self.latency_ms <= 0):
            raise HwnasError("source latencies must be finite and positive")

    def column(self, device: str) -> np.ndarray:
        if device not in self.devices:
            raise HwnasError(f"device '{device}' not in the source matrix; "
                             f"have: {', '.join(self.devices)}")
        return self.latency_ms[:, self.devices.index(device)]

    def without(self, devices: Sequence[str]) -> "SourceMatrix":
        keep = [i for i, d in enumerate(self.devices) if d not in set(devices)]
        return SourceMatrix(self.genomes, tuple(self.devices[i] for i in keep),
                            self.latency_ms[:, keep].copy())


@dataclass(frozen=True)
class TargetSamples:
    """The only values of the new device the predictor may see."""

    device: str
    genomes: np.ndarray
    latency_ms: np.ndarray

    def __post_init__(self) -> None:
        if len(self.genomes) != len(self.latency_ms):
            raise HwnasError(f"{len(self.genomes)} archs but {len(self.latency_ms)} latencies")
        if len(self.genomes) < 2:
            raise HwnasError(f"a few-shot fit needs at least 2 measured networks of "
                             f"'{self.device}', got {len(self.genomes)}")
        if np.any(~np.isfinite(self.latency_ms)) or np.any(self.latency_ms <= 0):
            raise HwnasError(f"target samples of '{self.device}' must be finite and positive")

    def plus(self, genomes: np.ndarray, latency_ms: np.ndarray) -> "TargetSamples":
        return TargetSamples(self.device, np.concatenate([self.genomes, genomes]),
                             np.concatenate([self.latency_ms, latency_ms]))


def split_target(matrix: SourceMatrix, device: str, k: int, seed: int,
                 exclude: Sequence[str] = ()) -> tuple[SourceMatrix, TargetSamples, np.ndarray]:
    """Hold ``device`` out: k seeded random archs as samples, the rest (indices) for testing.

    ``exclude`` drops more columns from the sources (e.g. the same device at other batch sizes).
    """
    y = matrix.column(device)
    rng = np.random.default_rng(seed)
    train = rng.choice(len(y), size=k, replace=False)
    test = np.setdiff1d(np.arange(len(y)), train)
    samples = TargetSamples(device, matrix.genomes[train].copy(), y[train].copy())
    return matrix.without([device, *exclude]), samples, test


def design(space, genomes: np.ndarray, interactions: bool) -> np.ndarray:
    x = space.encode_genomes(genomes).astype(np.float64)
    if not interactions:
        return x
    i, j = np.triu_indices(x.shape[1], 1)
    return np.concatenate([x, x[:, i] * x[:, j]], 1)       # pairwise op co-occurrence


class SourceFactors:
    """Latency factors learnt from source devices: arch encoding → factor scores, and each
    source device's loadings on them. Fit once per source set; adapt to many targets.

    The source devices' log-latencies form an (arch × device) matrix. Its principal directions
    are a few *latency factors* (how much an arch leans on convolutions, on memory traffic, on
    depth...), and every source device is a weighted sum of them. A ridge model maps an arch's
    encoding to its source log-latencies, hence to its factors, for any arch of the space.
    """

    def __init__(self, space, source: SourceMatrix, interactions: bool | None = None,
                 ridge_alpha: float = 1.0) -> None:
        from sklearn.linear_model import Ridge

        if len(source.devices) < 2:
            raise HwnasError("latency factors need at least 2 source devices")
        dim = space.encode_genomes(source.genomes[:1]).shape[1]
        interactions = dim <= 64 if interactions is None else bool(interactions)
        logs = np.log(source.latency_ms)
        centred = logs - logs.mean(0)
        n = len(centred)
        _, sing, vt = np.linalg.svd(centred, full_matrices=False)
        rank_max = int(min(max(RANKS), len(sing), np.sum(sing > 1e-9 * sing[0])))
        proj = vt[:rank_max].T / np.sqrt(n)                   # log-latency → factor scores
        loadings = vt[:rank_max] * np.sqrt(n)                 # (R, D): factors → devices
        x = design(space, source.genomes, interactions)
        ridge = Ridge(alpha=ridge_alpha).fit(x, centred)
        # Latency itself is a sum over operators: the same model on milliseconds is each
        # source's operator table, learnt from its measured networks
        table = Ridge(alpha=ridge_alpha).fit(x, source.latency_ms)
        # arch → factors is linear: keep one matrix so that prediction is a single product
        scores = centred @ proj
        residual = [max(float((centred - scores[:, :r] @ loadings[:r]).var(0).mean()), 1e-6)
                    for r in range(1, rank_max + 1)]
        self._setup(space, source.devices, interactions, ridge.coef_.T @ proj,
                    ridge.intercept_ @ proj, loadings, residual,
                    table.coef_.T, table.intercept_, 0.5 * source.latency_ms.min(0))

    def _setup(self, space, devices, interactions, coef, bias, loadings, residual,
               ms_coef, ms_bias, ms_floor) -> None:
        self.space, self.devices, self.interactions = space, tuple(devices), bool(interactions)
        self._coef, self._bias = np.asarray(coef, float), np.asarray(bias, float)
        self._ms_coef, self._ms_bias = np.asarray(ms_coef, float), np.asarray(ms_bias, float)
        self._ms_floor = np.asarray(ms_floor, float)
        self.loadings = np.asarray(loadings, float)
        self.rank_max = len(self.loadings)
        self.residual_var = [float(v) for v in residual]
        rng = np.random.default_rng(0)
        sizes = space.choice_sizes()
        self.tables = gene_tables(self._factors_direct, sizes, self.interactions, rng)
        self.ms_tables = gene_tables(self._ms_direct, sizes, self.interactions, rng)

    def _factors_direct(self, genomes: np.ndarray) -> np.ndarray:
        return design(self.space, genomes, self.interactions) @ self._coef + self._bias

    def _ms_direct(self, genomes: np.ndarray) -> np.ndarray:
        return design(self.space, genomes, self.interactions) @ self._ms_coef + self._ms_bias

    def factors(self, genomes: np.ndarray) -> np.ndarray:
        """(N, R) latency factors of archs, from their encoding alone."""
        return self.tables(genomes) if self.tables is not None else self._factors_direct(genomes)

    def latency_ms(self, genomes: np.ndarray) -> np.ndarray:
        """(N, D) each source device's latency of archs, from its learnt operator table
        (floored at half its smallest measured latency)."""
        out = self.ms_tables(genomes) if self.ms_tables is not None else self._ms_direct(genomes)
        return np.maximum(out, self._ms_floor)

    def to_json(self) -> dict:
        return {"devices": list(self.devices), "interactions": self.interactions,
                "coef": self._coef, "bias": self._bias, "loadings": self.loadings,
                "residual_var": self.residual_var, "ms_coef": self._ms_coef,
                "ms_bias": self._ms_bias, "ms_floor": self._ms_floor}

    @classmethod
    def from_json(cls, obj: dict, space) -> "SourceFactors":
        from hwnas.predict._store import array

        self = cls.__new__(cls)
        rank = len(obj.get("residual_var", []))
        coef = array(obj, "coef").reshape(-1, rank) if rank else None
        if coef is None or coef.shape[0] != design(space, space.sample_genomes(
                np.random.default_rng(0), 1), bool(obj.get("interactions"))).shape[1]:
            raise TableError("stored latency factors do not fit the space's encoding")
        n_dev = len(obj["devices"])
        self._setup(space, obj["devices"], obj["interactions"], coef, array(obj, "bias"),
                    array(obj, "loadings").reshape(rank, -1), array(obj, "residual_var"),
                    array(obj, "ms_coef").reshape(-1, n_dev), array(obj, "ms_bias"),
                    array(obj, "ms_floor"))
        return self
