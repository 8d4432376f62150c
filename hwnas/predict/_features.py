"""Features of whole networks for the compiler-aware predictor, vectorised over genomes."""
from __future__ import annotations

import numpy as np

__all__ = ["table_positions", "network_features", "feature_sets"]


def table_positions(space, genomes: np.ndarray, op_ms: np.ndarray) -> np.ndarray:
    """(N, P) table latency of each operator position of each arch (0 where a slot is off)."""
    return space.op_values(genomes, op_ms)


def _n_resolutions(space) -> int:
    """Columns of the resolution one-hot: 0 when the space has a single resolution."""
    n_res = len(getattr(space, "resolutions", ()) or ())
    return n_res if n_res > 1 else 0


def _resolution_onehot(space, genomes: np.ndarray) -> np.ndarray:
    """(N, R) one-hot of the resolution gene (the last one); (N, 0) for a single resolution."""
    n_res = _n_resolutions(space)
    if not n_res:
        return np.zeros((len(genomes), 0))
    return np.eye(n_res)[np.asarray(genomes)[:, -1].astype(np.intp)]


def network_features(space, genomes: np.ndarray, op_ms: np.ndarray,
                     n_cols: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, F), table sum (N,)); columns in the order of ``feature_sets``.

    Features: log table sum; log MACs, parameters and peak activations; the number of
    operators (each one a kernel launch and a memory round trip); a one-hot of the input
    resolution (the table misses effects that depend on the feature-map sizes as a whole
    network lays them out in memory, and they need not grow with the resolution); each
    position's share of the table sum (where the time goes); the arch encoding.
    ``n_cols`` keeps only the first columns (and skips computing the others).
    """
    ids = space.op_indices(genomes)
    pos = space.op_values(genomes, op_ms, ids)
    total = pos.sum(1)
    if n_cols == 1:
        return np.log(total)[:, None], total
    costs = space.cost_vectors()
    macs = costs["macs"][ids].sum(1)
    params = costs["params"][ids].sum(1)
    act = costs["act"][ids].max(1)
    n_ops = (ids != space.null_op).sum(1)
    parts = [np.log(total)[:, None], np.log1p(np.stack([macs, params, act], 1)),
             n_ops[:, None].astype(np.float64)]
    if n_cols is None or n_cols > 5:
        res = _resolution_onehot(space, genomes)
        parts.append(res)
        if n_cols is None or n_cols > 5 + res.shape[1]:
            parts += [pos / total[:, None], space.encode_genomes(genomes)]
    return np.concatenate(parts, 1)[:, :n_cols], total


def feature_sets(space) -> dict[str, int | None]:
    """Nested column sets, simplest first; the fit keeps the one that predicts left-out
    networks best (``None``: every column)."""
    n_res = _n_resolutions(space)
    sets: dict[str, int | None] = {"scale": 1, "costs": 5}
    if n_res:
        sets["resolution"] = 5 + n_res
    sets["full"] = None
    return sets
