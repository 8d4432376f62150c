"""A/B reference timing: every measurement interleaved with a fixed reference network.

On a busy or throttling device a latency drifts from one second to the next, and a single
timing believes whatever the device was doing at that moment. Timed in alternation with a
reference network on the same device, in the same process (``R A₁ … Aₙ R A₁ … Aₙ R …``), each
block of an item has a reference block on either side; the faster of the two is what the
device's speed was right then (load only slows a block down, so one spiked neighbour must not
count), and the median of ``item / reference`` over the rounds cancels the drift. The drift-corrected latency is that
ratio times the reference's *quiet* time: its time on the device when nothing else runs,
estimated as a low percentile of many short reference blocks (load only ever slows a block
down, and on a time-sliced CPU some short blocks run alone).

A measurement carries both the raw time and the ratio, the reference's spread while it ran
(how steady the device was) and the load (the reference's median over its quiet time). When the
reference moved by more than ``threshold`` during a batch, the batch is taken again, up to
``tries`` times, every try adding its rounds; after that it is returned flagged ``unstable``,
never silently.

Cost: one reference block per round of a batch of ``n`` items, each reference block half as
long as an item's (``min_repeat_ms / 2``): about ``1 + 1 / (2n)`` times the plain protocol.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol, Timer

__all__ = ["Reference", "ABMeasurement", "measure_batch", "quiet_time", "STABILITY_THRESHOLD"]

#: the reference's relative spread (p90 − p10) / median above which a batch is taken again
STABILITY_THRESHOLD = 0.15
QUIET_PERCENTILE = 10


@dataclass(frozen=True)
class Reference:
    """The network every measurement is interleaved with, and its quiet time (ms), when known
    (a table's, or this device's estimated at the start)."""

    timer: Timer
    quiet_ms: float | None = None
    name: str = "reference"


@dataclass(frozen=True)
class ABMeasurement(Measurement):
    """``latency`` is drift-corrected (ratio × quiet time) when a reference with a quiet time
    was used, else raw; ``raw`` is what the item took as measured."""

    raw: Latency | None = field(default=None, kw_only=True)
    ratio: float | None = field(default=None, kw_only=True)
    ratio_ci: tuple[float, float] | None = field(default=None, kw_only=True)
    reference_ms: float | None = field(default=None, kw_only=True)
    reference_spread: float | None = field(default=None, kw_only=True)
    load: float | None = field(default=None, kw_only=True)
    unstable: bool = field(default=False, kw_only=True)

    @property
    def corrected(self) -> bool:
        """Whether ``latency`` is drift-corrected (a reference with a known quiet time)."""
        return self.load is not None

    def extra(self) -> dict:
        out = super().extra()
        if self.raw is not None and self.ratio is not None:
            out.update(raw_ms=round(self.raw.median_ms, 6), ratio=round(self.ratio, 6),
                       ratio_p10_p90=[round(v, 6) for v in self.ratio_ci],
                       reference_ms=round(self.reference_ms, 6),
                       reference_spread=round(self.reference_spread, 4),
                       load=round(self.load, 4) if self.load is not None else None)
        if self.unstable:
            out["unstable"] = True
        return out


def _spread(x: np.ndarray) -> float:
    med = float(np.median(x))
    return float((np.percentile(x, 90) - np.percentile(x, 10)) / med) if med > 0 else 0.0


def quiet_time(timer: Timer, protocol: Protocol = DEFAULT_PROTOCOL, blocks: int = 30) -> float:
    """The reference's quiet time on this device now: a low percentile of ``blocks`` short
    blocks (``min_repeat_ms / 2`` each)."""
    timer(max(1, protocol.warmup), 1)
    number = _number(protocol, min(timer(1, 3)), 0.5)
    return float(np.percentile(timer(number, blocks), QUIET_PERCENTILE))


def _number(protocol: Protocol, run_ms: float, share: float = 1.0) -> int:
    if run_ms <= 0:
        return protocol.max_number
    return int(max(1, min(protocol.max_number,
                          np.ceil(protocol.min_repeat_ms * share / run_ms))))


def measure_batch(timers: Sequence[Timer], reference: Reference | None,
                  protocol: Protocol = DEFAULT_PROTOCOL, rounds: int | None = None,
                  threshold: float = STABILITY_THRESHOLD, tries: int = 3,
                  on_try: Callable[[int, float], None] | None = None) -> list[ABMeasurement]:
    """Time every timer in ``rounds`` interleaved rounds (``protocol.repeats`` by default),
    each round bracketed by reference blocks; one ``ABMeasurement`` per timer, in order.

    Without a reference, the items are still interleaved (drift is spread over them) and
    their measurements are raw (``corrected`` is false).
    """
    rounds = rounds or protocol.repeats
    for t in timers:
        if protocol.warmup:
            t(protocol.warmup, 1)
    numbers = [_number(protocol, min(t(1, 3))) for t in timers]
    ref_number = None
    if reference is not None:
        reference.timer(max(1, protocol.warmup), 1)
        ref_number = _number(protocol, min(reference.timer(1, 3)), 0.5)
    tried: list[tuple[np.ndarray, np.ndarray, float]] = []
    for attempt in range(1, tries + 1):
        item_ms = np.zeros((len(timers), rounds))
        ref_ms = np.zeros(rounds + 1)
        if reference is not None:
            ref_ms[0] = reference.timer(ref_number, 1)[0]
        for r in range(rounds):
            for i, (t, n) in enumerate(zip(timers, numbers)):
                item_ms[i, r] = t(n, 1)[0]
            if reference is not None:
                ref_ms[r + 1] = reference.timer(ref_number, 1)[0]
        spread = _spread(ref_ms) if reference is not None else 0.0
        if on_try:
            on_try(attempt, spread)
        tried.append((item_ms, ref_ms, spread))
        if reference is None or spread <= threshold:
            break
    # every try counts: a retry adds samples, it does not replace the earlier ones
    spread = min(t[2] for t in tried)
    unstable = reference is not None and spread > threshold
    out = []
    for i, n in enumerate(numbers):
        raw = Latency.from_samples_ms(np.concatenate([t[0][i] for t in tried]))
        if reference is None:
            out.append(ABMeasurement(raw, n, len(tried), raw=raw))
            continue
        # load only slows a block down: the faster reference block on either side is the
        # device's speed around the item's block (one spiked neighbour does not bias it)
        ratios = np.concatenate([t[0][i] / np.minimum(t[1][:-1], t[1][1:]) for t in tried])
        ratio = float(np.median(ratios))
        ci = (float(np.percentile(ratios, 10)), float(np.percentile(ratios, 90)))
        quiet = reference.quiet_ms
        ref_med = float(np.median(np.concatenate([t[1] for t in tried])))
        if quiet:
            lat = Latency(ratio * quiet, max(ci[1], ratio) * quiet,
                          float(np.std(ratios, ddof=1)) * quiet, int(ratios.size))
        else:
            lat = raw
        out.append(ABMeasurement(lat, n, len(tried), raw=raw, ratio=ratio, ratio_ci=ci,
                                 reference_ms=ref_med, reference_spread=spread,
                                 load=ref_med / quiet if quiet else None, unstable=unstable))
    return out
