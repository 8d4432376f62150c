"""``Latency``: a measured latency that carries its spread (nn-Meter's idea)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

__all__ = ["Latency"]


@dataclass(frozen=True)
class Latency:
    """A latency with its spread. Adding two adds medians and variances."""

    median_ms: float
    p90_ms: float
    std_ms: float
    n: int

    def __add__(self, other: "Latency") -> "Latency":
        return Latency(self.median_ms + other.median_ms, self.p90_ms + other.p90_ms,
                       math.sqrt(self.std_ms ** 2 + other.std_ms ** 2), min(self.n, other.n))

    @property
    def cv(self) -> float:
        return self.std_ms / self.median_ms if self.median_ms > 0 else 0.0

    @classmethod
    def from_samples_ms(cls, samples_ms: Iterable[float]) -> "Latency":
        a = np.asarray(list(samples_ms), dtype=np.float64)
        if a.size == 0:
            raise ValueError("no samples")
        return cls(float(np.median(a)), float(np.percentile(a, 90)),
                   float(a.std(ddof=1)) if a.size > 1 else 0.0, int(a.size))

    def to_json(self) -> dict:
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "std_ms": self.std_ms,
                "n": self.n}
