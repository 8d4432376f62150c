"""The latency-predictor interface and its registry."""
from __future__ import annotations

import abc
from typing import Sequence

import numpy as np

from hwnas._registry import Registry

__all__ = ["LatencyPredictor", "LogNormalPredictor", "PREDICTORS"]

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


class LogNormalPredictor(LatencyPredictor):
    """A predictor of log-latency mean and spread; latency is their exponent (log-normal)."""

    @abc.abstractmethod
    def _log_moments(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of log-latency (log ms) of each arch."""

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return np.exp(self._log_moments(genomes)[0])

    def predict_std_log(self, genomes: np.ndarray) -> np.ndarray:
        """Predictive standard deviation of log-latency (≈ relative error)."""
        return self._log_moments(genomes)[1]

    def predict_upper_genomes(self, genomes: np.ndarray, quantile: float = 0.9) -> np.ndarray:
        from scipy.stats import norm

        mean, sd = self._log_moments(genomes)
        return np.exp(mean + norm.ppf(quantile) * sd)
