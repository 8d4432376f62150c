"""The fixed measurement protocol every latency in a table is taken with.

One *sample* is the mean time of ``number`` back-to-back runs. ``number`` is chosen per operator
so that one sample lasts at least ``min_repeat_ms``: short kernels are not timed below the clock's
resolution and long ones are not run needlessly often. A measurement is ``repeats`` samples after
``warmup`` discarded runs; when the samples' coefficient of variation exceeds ``cv_threshold`` the
whole measurement is taken again (up to ``max_remeasure`` times) and the steadiest one is kept.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.runtime.latency import Latency

__all__ = ["Protocol", "DEFAULT_PROTOCOL", "Measurement", "run_protocol", "Timer",
           "merge_rounds"]

#: ``timer(number, repeat) -> per-run milliseconds of each of the ``repeat`` samples``
Timer = Callable[[int, int], list[float]]


@dataclass(frozen=True)
class Protocol:
    warmup: int = 3
    min_repeat_ms: float = 1.0
    repeats: int = 10
    cv_threshold: float = 0.05
    max_remeasure: int = 2
    max_number: int = 10_000

    def __post_init__(self) -> None:
        if self.repeats < 10:
            raise HwnasError(f"protocol: repeats must be at least 10, got {self.repeats}")
        if self.warmup < 0 or self.max_remeasure < 0:
            raise HwnasError("protocol: warmup and max_remeasure must be ≥ 0")
        if not (math.isfinite(self.min_repeat_ms) and 0 < self.min_repeat_ms <= 10_000):
            raise HwnasError(f"protocol: min_repeat_ms must be in (0, 10000] ms, got "
                             f"{self.min_repeat_ms}")

    def number_for(self, run_ms: float) -> int:
        """Runs per sample so that one sample lasts at least ``min_repeat_ms``."""
        if run_ms <= 0:
            return self.max_number
        return max(1, min(self.max_number, math.ceil(self.min_repeat_ms / run_ms)))

    def to_json(self) -> dict:
        return {**asdict(self), "statistic": "median/p90/std over repeats; one repeat is the "
                "mean of `number` runs, number = ceil(min_repeat_ms / single-run estimate); "
                "re-measured while cv > cv_threshold, steadiest attempt kept"}

    @classmethod
    def from_json(cls, obj: dict) -> "Protocol":
        if not isinstance(obj, dict):
            raise HwnasError(f"protocol: expected an object, got {str(obj)[:60]}")
        try:
            return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})
        except TypeError:
            raise HwnasError(f"protocol: a field is not a number: {str(obj)[:120]}") from None

    def same_as(self, obj: dict) -> bool:
        return Protocol.from_json(obj) == self


DEFAULT_PROTOCOL = Protocol()


@dataclass(frozen=True)
class Measurement:
    """A latency plus how it was obtained (stored beside it in the table)."""

    latency: Latency
    number: int
    attempts: int
    # one median per round (``merge_rounds``); keyword-only, so subclasses add positional fields
    round_medians: tuple[float, ...] = field(default=(), kw_only=True)

    @property
    def cv(self) -> float:
        return self.latency.cv

    def extra(self) -> dict:
        out = {"number": self.number, "attempts": self.attempts, "cv": round(self.cv, 5)}
        if self.round_medians:
            out["round_medians"] = [round(v, 4) for v in self.round_medians]
        return out


def merge_rounds(rounds: Sequence[Measurement]) -> Measurement:
    """One measurement from several of the same artefact taken at different times.

    On a shared or virtualised host a whole network's median drifts by several percent from
    one few-second window to the next, far more than the spread inside one window. Rounds
    interleaved with other work sample that drift: the result is the median of the rounds'
    medians, its spread is the spread between rounds, and its p90 is the larger of the rounds'
    typical p90 and the 90th percentile of their medians. Other fields (a farm's device, say)
    are the first round's.
    """
    if not rounds:
        raise ValueError("no rounds")
    if len(rounds) == 1:
        return rounds[0]
    med = np.array([m.latency.median_ms for m in rounds])
    p90 = np.array([m.latency.p90_ms for m in rounds])
    lat = Latency(float(np.median(med)), float(max(np.median(p90), np.percentile(med, 90))),
                  float(med.std(ddof=1)), int(sum(m.latency.n for m in rounds)))
    return replace(rounds[0], latency=lat, attempts=int(sum(m.attempts for m in rounds)),
                   round_medians=tuple(float(v) for v in med))


def run_protocol(timer: Timer, protocol: Protocol = DEFAULT_PROTOCOL) -> Measurement:
    """Warm up, size ``number``, then sample until the spread is acceptable."""
    if protocol.warmup:
        timer(protocol.warmup, 1)
    estimate = min(timer(1, 3))
    number = protocol.number_for(estimate)
    best: Latency | None = None
    attempts = 0
    for attempts in range(1, protocol.max_remeasure + 2):
        lat = Latency.from_samples_ms(timer(number, protocol.repeats))
        if best is None or lat.cv < best.cv:
            best = lat
        if best.cv <= protocol.cv_threshold:
            break
    return Measurement(best, number, attempts)
