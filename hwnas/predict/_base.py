"""The latency-predictor interface and its registry."""
from __future__ import annotations

import abc
from typing import Sequence

import numpy as np

from hwnas._registry import Registry

__all__ = ["LatencyPredictor", "PREDICTORS"]

PREDICTORS: Registry = Registry("latency predictor")


class LatencyPredictor(abc.ABC):
    """``predict_genomes(G) -> ms`` is vectorised over a population (one row per arch)."""

    name: str = ""

    def __init__(self, space) -> None:
        self.space = space

    @abc.abstractmethod
    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray: ...

    def predict_upper_genomes(self, genomes: np.ndarray, quantile: float = 0.9) -> np.ndarray:
        """An upper bound used as a safety margin; predictors without uncertainty return the mean."""
        return self.predict_genomes(genomes)

    def predict(self, archs: Sequence) -> np.ndarray:
        return self.predict_genomes(self.space.to_genomes(list(archs)))
