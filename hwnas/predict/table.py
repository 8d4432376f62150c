"""``table``: the sum of the operators' table entries (a missing key names itself)."""
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
        self._ms = table.vector(space.op_list)                # (n_ops + 1,), last is null_op
        self._p90 = table.vector(space.op_list, "p90_ms")

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return self._ms[self.space.op_indices(genomes)].sum(1)

    def predict_upper_genomes(self, genomes: np.ndarray, quantile: float = 0.9) -> np.ndarray:
        return self._p90[self.space.op_indices(genomes)].sum(1)
