"""The accuracy predictors' input: ``space.encode_genomes`` plus log multiply-adds."""
from __future__ import annotations

import numpy as np

__all__ = ["subnet_features"]


def subnet_features(space, genomes: np.ndarray, dtype=np.float32) -> np.ndarray:
    """(N, F) features of each genome, in ``dtype``."""
    g = np.asarray(genomes)
    macs = np.log(space.flops_genomes(g).astype(dtype))[:, None]
    return np.concatenate([space.encode_genomes(g).astype(dtype, copy=False), macs], 1)
