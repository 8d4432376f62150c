"""Closing the loop: fold on-device measurements of whole bundles back into a predictor."""
from __future__ import annotations

import numpy as np

from hwnas.predict._base import LatencyPredictor

__all__ = ["MeasuredCorrection"]


class MeasuredCorrection(LatencyPredictor):
    """``base`` scaled by the measured/predicted ratio of the nearest measured architectures.

    Each deploy round adds (genome, measured ms). A prediction is multiplied by a
    kernel-weighted mean of the logged ratios, the weights falling off with the distance in
    log-predicted latency, so a measurement corrects most strongly the architectures of
    similar cost. With no measurement it is the base predictor unchanged.
    """

    def __init__(self, base: LatencyPredictor, bandwidth: float = 0.25) -> None:
        super().__init__(base.space)
        self.base, self.bandwidth = base, bandwidth
        self.name = f"{base.name}+measured"
        self._log_pred: list[float] = []
        self._log_ratio: list[float] = []

    def add(self, genome: np.ndarray, measured_ms: float) -> None:
        pred = float(self.base.predict_genomes(genome[None, :])[0])
        self._log_pred.append(np.log(pred))
        self._log_ratio.append(np.log(measured_ms / pred))

    @property
    def n(self) -> int:
        return len(self._log_ratio)

    def _factor(self, base_ms: np.ndarray) -> np.ndarray:
        if not self._log_ratio:
            return np.ones_like(base_ms)
        d = np.log(base_ms)[:, None] - np.asarray(self._log_pred)[None, :]
        w = np.exp(-0.5 * (d / self.bandwidth) ** 2) + 1e-12
        return np.exp((w * np.asarray(self._log_ratio)[None, :]).sum(1) / w.sum(1))

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        base = self.base.predict_genomes(genomes)
        return base * self._factor(base)

    def predict_upper_genomes(self, genomes: np.ndarray, quantile: float = 0.9) -> np.ndarray:
        base = self.base.predict_genomes(genomes)
        return self.base.predict_upper_genomes(genomes, quantile) * self._factor(base)
