"""``table``: the sum of the operators' table entries (a missing key names itself).

A table keyed per input resolution (``LatencyTable.by_resolution``) prices each arch from the
entries of its own resolution, as the published per-resolution tables are meant to be read.
"""
from __future__ import annotations

import numpy as np

from hwnas.predict._base import PREDICTORS, LatencyPredictor
from hwnas.profile.table import LatencyTable

__all__ = ["TablePredictor"]


@PREDICTORS.register("table")
class TablePredictor(LatencyPredictor):
    name = "table"

    def __init__(self, space, table: LatencyTable) -> None:
        super().__init__(space)
        self.table = table
        # (n_ops + 1,) or (resolutions, n_ops + 1); the last column is null_op
        self._ms = table.space_values(space)
        self._p90 = table.space_values(space, "p90_ms")

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return self.space.op_values(genomes, self._ms).sum(1)

    def predict_upper_genomes(self, genomes: np.ndarray, quantile: float = 0.9) -> np.ndarray:
        return self.space.op_values(genomes, self._p90).sum(1)
