"""Anchors: networks of known quiet latency, timed beside an item under the same contention.

The A/B ratio to the reference cancels a device that is uniformly slower (a throttled clock,
a busy host's shared caches). It does not cancel a core held by another process: each
network then loses its own share of parallel speed-up, and the loss grows with the network.
On the x86 host (znver5, 2 threads), eight table networks timed A/B for 60 rounds, quiet and
then under one held core (``hwnas.runtime.load``, full duty), three times alternately, read
x0.93, 0.94, 0.95 (0.10-0.17 ms), x1.03, 1.05, 1.03, 1.04 (0.19-0.23 ms, about the
reference's size) and x1.34 (0.38 ms) their quiet readings; the three repeats agreed within
3%. The bias is a property of the network under that contention, not noise, and it is smooth
in the network's size, so networks whose quiet latency is known (a table's calibration
networks), timed in the same batch as the item, measure it where the item is:
``bias_at`` interpolates their read/quiet ratio at the item's reading (linear in log-log
between the two anchors around it, the nearest anchor's outside them), and the item's
latency is its reading divided by that. Left out of those eight networks in turn, the
interpolation from their neighbours missed their bias by 0.3-4%. Each network also scatters
about that trend: in ``benchmarks/noise.py``, 25 anchored deploy readings near the
reference's size were their bundle's quiet truth to a median 3.3% (10.5% fast to 8.3% slow;
ten unanchored ones 5.4%, 8.4% fast to 22% slow), which is why the deploy still judges a
contended reading with a margin. The anchors' quiet times are the table's: where the host
has since come to run networks of that size slower relative to the reference (A/B does not
cancel that), the anchors read that too, and the item's latency comes out in the table's
terms: in one run the anchors nearest the budget read x1.09-1.14 and four of five bundles 5-8%
faster than they then ran quiet.

Cost: the anchors' own blocks (three anchors: four times the item's timing, about a second
at 60 rounds of 0.2 ms networks), taken only when a measurement was contended.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import Timer
from hwnas.runtime.reference import ABMeasurement, Reference, measure_batch

__all__ = ["Anchor", "AnchorFit", "bias_at", "measure_anchored"]


@dataclass(frozen=True)
class Anchor:
    """A network of known quiet latency on the device (ms, on the reference's quiet basis)."""

    timer: Timer
    quiet_ms: float
    name: str = "anchor"


@dataclass(frozen=True)
class AnchorFit:
    """How a contended reading was corrected: ``read_ms`` divided by ``bias``, interpolated
    from the anchors' (name, read, quiet) figures."""

    read_ms: float
    bias: float
    points: tuple[tuple[str, float, float], ...]

    def to_json(self) -> dict:
        return {"read_ms": round(self.read_ms, 6), "bias": round(self.bias, 4),
                "anchors": [{"arch": n, "read_ms": round(r, 6), "quiet_ms": round(q, 6),
                             "bias": round(r / q, 4)} for n, r, q in self.points]}


def bias_at(read_ms: float, points: Sequence[tuple[float, float]]) -> float:
    """The read/quiet bias at an item's ``read_ms``, from the anchors' (read, quiet) pairs:
    linear in log-log between the two anchors whose readings bracket it, the nearest
    anchor's bias outside them (beyond the largest anchor, the item's own bias is larger
    still, so its latency stays on the slow, safe side)."""
    pts = sorted((math.log(r), math.log(r / q)) for r, q in points
                 if r > 0 and q > 0 and math.isfinite(r) and math.isfinite(q))
    if not pts:
        raise ValueError("no anchor with a positive, finite reading and quiet time")
    x = math.log(read_ms)
    if x <= pts[0][0]:
        return math.exp(pts[0][1])
    if x >= pts[-1][0]:
        return math.exp(pts[-1][1])
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            w = 0.0 if x1 == x0 else (x - x0) / (x1 - x0)
            return math.exp(y0 + w * (y1 - y0))
    raise AssertionError("unreachable")


def measure_anchored(timer: Timer, reference: Reference, anchors: Sequence[Anchor],
                     **batch) -> tuple[ABMeasurement, AnchorFit | None]:
    """The item timed A/B in one batch with ``anchors`` (``measure_batch``'s keywords in
    ``batch``). When that batch was contended, the item's latency is its reading divided by
    the anchors' bias at it (every figure of its ``Latency``), with the fit beside it; when it
    was not (the other work ended), the reading stands and the fit is None."""
    if not anchors:
        raise ValueError("measure_anchored needs at least one anchor")
    got = measure_batch([timer, *(a.timer for a in anchors)], reference, **batch)
    item, rest = got[0], got[1:]
    if not (item.contended and item.corrected):
        return item, None
    points = tuple((a.name, m.latency.median_ms, a.quiet_ms) for a, m in zip(anchors, rest))
    read = item.latency.median_ms
    b = bias_at(read, [(r, q) for _, r, q in points])
    lat = item.latency
    fixed = Latency(lat.median_ms / b, lat.p90_ms / b, lat.std_ms / b, lat.n)
    return replace(item, latency=fixed), AnchorFit(read, b, points)
