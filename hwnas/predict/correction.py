"""Closing the loop: fold on-device measurements of whole bundles back into a predictor.

A few-shot predictor takes them as more samples and is refitted (``FewShotFeedback``); any
other predictor is scaled by the measured/predicted ratio of the nearest measured archs
(``MeasuredCorrection``). ``feedback_for`` picks the one that fits the predictor.
"""
from __future__ import annotations

import numpy as np

from hwnas.predict._base import LatencyPredictor

__all__ = ["MeasuredCorrection", "FewShotFeedback", "feedback_for"]


class MeasuredCorrection(LatencyPredictor):
    """``base`` times the device's ``scale``, corrected by the measured/predicted ratio of the
    nearest measured architectures.

    ``scale`` is one factor for a device uniformly faster or slower than its table (its
    reference network's quiet time now over the table's). Each deploy round adds (genome,
    measured ms); a prediction is multiplied by a kernel-weighted mean of the logged ratios of
    every round, the weights falling off with the distance in log-predicted latency, so a
    measurement corrects most strongly the architectures of similar cost. With no measurement
    and a scale of 1 it is the base predictor unchanged.
    """

    feeds_samples = False

    def __init__(self, base: LatencyPredictor, bandwidth: float = 0.25) -> None:
        super().__init__(base.space)
        self.base, self.bandwidth = base, bandwidth
        self.name = f"{base.name}+measured"
        self.scale = 1.0
        self._log_pred: list[float] = []
        self._log_ratio: list[float] = []

    def _scaled(self, genomes: np.ndarray) -> np.ndarray:
        return self.base.predict_genomes(genomes) * self.scale

    def add(self, genome: np.ndarray, measured_ms: float) -> None:
        pred = float(self._scaled(genome[None, :])[0])
        self._log_pred.append(np.log(pred))
        self._log_ratio.append(np.log(measured_ms / pred))

    @property
    def n(self) -> int:
        """Measurements folded in (the device scale counts as one when it is not 1)."""
        return len(self._log_ratio) + (self.scale != 1.0)

    def _factor(self, base_ms: np.ndarray) -> np.ndarray:
        return _nearest_ratio(base_ms, self._log_pred, self._log_ratio, self.bandwidth)

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        base = self._scaled(genomes)
        return base * self._factor(base)

    def predict_upper_genomes(self, genomes: np.ndarray, quantile: float = 0.9) -> np.ndarray:
        base = self._scaled(genomes)
        return self.base.predict_upper_genomes(genomes, quantile) * self.scale * \
            self._factor(base)


class FewShotFeedback(LatencyPredictor):
    """A few-shot predictor refitted with every measurement added (``add``) as one more
    sample: the deploy loop's bundles teach it the device as its own samples did. One sample
    among its k moves a low-rank fit little, so what the refit still misses at the measured
    archs (their measured/refitted ratio) corrects its predictions as ``MeasuredCorrection``
    does: most strongly at archs of similar predicted cost."""

    feeds_samples = True
    #: its samples were measured on the device itself: no table-to-device factor applies
    scale = 1.0

    def __init__(self, base, bandwidth: float = 0.25) -> None:
        super().__init__(base.space)
        self.base = self.current = base
        self.name = f"{base.name}+samples"
        self.bandwidth = bandwidth
        self._genomes: list[np.ndarray] = []
        self._measured: list[float] = []

    def add(self, genome: np.ndarray, measured_ms: float) -> None:
        self.current = self.current.with_samples(np.asarray(genome)[None, :],
                                                 np.array([float(measured_ms)]))
        self._genomes.append(np.asarray(genome))
        self._measured.append(float(measured_ms))

    @property
    def n(self) -> int:
        return len(self._measured)

    def _factor(self, base_ms: np.ndarray) -> np.ndarray:
        if not self._measured:
            return np.ones_like(base_ms)
        pred = self.current.predict_genomes(np.stack(self._genomes))
        return _nearest_ratio(base_ms, np.log(pred),
                              np.log(np.asarray(self._measured) / pred), self.bandwidth)

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        base = self.current.predict_genomes(genomes)
        return base * self._factor(base)

    def predict_upper_genomes(self, genomes: np.ndarray, quantile: float = 0.9) -> np.ndarray:
        base = self.current.predict_genomes(genomes)
        return self.current.predict_upper_genomes(genomes, quantile) * self._factor(base)


def _nearest_ratio(base_ms: np.ndarray, log_pred, log_ratio, bandwidth: float) -> np.ndarray:
    """The measured/predicted ratio at each of ``base_ms``: a mean of the logged ratios of
    the measured archs, weighted by a Gaussian in log-predicted latency (1 with none)."""
    if len(log_ratio) == 0:
        return np.ones_like(base_ms)
    d = np.log(base_ms)[:, None] - np.asarray(log_pred)[None, :]
    w = np.exp(-0.5 * (d / bandwidth) ** 2) + 1e-12
    return np.exp((w * np.asarray(log_ratio)[None, :]).sum(1) / w.sum(1))


def feedback_for(base: LatencyPredictor) -> LatencyPredictor:
    """``FewShotFeedback`` for a predictor that refits on samples (``with_samples``), else
    ``MeasuredCorrection``."""
    if hasattr(base, "with_samples"):
        return FewShotFeedback(base)
    return MeasuredCorrection(base)
