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

A ratio is only as good as the assumption that load slows the item and the reference alike. A
load from outside (another tenant of the host's cores, caches and memory) slows networks
unevenly: on the x86 host, 200 held-out networks measured at a load of 1.1x or more agreed
with the calibrated predictor within 10% for 40-63% of them, against 86% for those measured
at under 1.1x. With a ``load_limit``, a try whose reference ran more than that many times its
quiet time is taken again after ``busy_wait_s``; once a try under the limit exists the loaded
ones are left out (counted in ``tries_loaded``), and when every try was loaded only the least
loaded one is kept and the measurement is flagged ``loaded``.

With a ``contention`` probe (a local device, ``hwnas.runtime.contention``), each try also
counts the cores other processes held while it ran. A ratio taken while another process holds
a core is biased (each network loses its own share of parallel speed-up), so with a
``busy_limit`` such a try is taken again after ``busy_wait_s``; once an uncontended try exists
the contended ones are left out of the figures (they are counted in ``tries_contended``), and
when every try was contended the measurement is returned flagged ``contended``.

Every block, the reference's and each item's, starts with the same module run untimed for
``WARM_MS``: a module just switched to runs slow for its first few milliseconds (caches,
the thread pool's wake-up), and a cold block compares cold code with warm. Steady-state
latency is what a deployed model's callers see, and what the quiet time measures.

Cost: one reference block per round of a batch of ``n`` items, each reference block half as
long as an item's (``min_repeat_ms / 2``): about ``1 + 1 / (2n)`` times the same items timed
interleaved without it. The warm-ups come on top of both, ``WARM_MS`` per block: profiling
the x86-host table, timing took 19.9 s instead of 8.0 s for its 255 operators and 44.6 s
instead of 12.2 s for its 40 networks, against about 500 s of compiling.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol, Timer

__all__ = ["Reference", "ABMeasurement", "QuietTime", "measure_batch", "quiet_time",
           "quiet_time_probed", "STABILITY_THRESHOLD", "LOAD_LIMIT"]

#: the reference's relative spread (p90 − p10) / median above which a batch is taken again
STABILITY_THRESHOLD = 0.15
QUIET_PERCENTILE = 10
#: the reference's slowdown over its quiet time above which a try is taken again, where the
#: caller asks for it (``load_limit``): on the x86 host, 12 held-out networks timed at a load
#: of 1.1-1.2x read 14% slow against the calibrated predictor (8% of them within 10%), those
#: under 1.1x 0.4% (89%)
LOAD_LIMIT = 1.1


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
    busy_cores: float | None = field(default=None, kw_only=True)
    contended: bool = field(default=False, kw_only=True)
    tries_contended: int = field(default=0, kw_only=True)
    loaded: bool = field(default=False, kw_only=True)
    tries_loaded: int = field(default=0, kw_only=True)

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
        if self.busy_cores is not None:
            out["busy_cores"] = round(self.busy_cores, 3)
        if self.contended:
            out["contended"] = True
        if self.tries_contended:
            out["tries_contended"] = self.tries_contended
        if self.loaded:
            out["loaded"] = True
        if self.tries_loaded:
            out["tries_loaded"] = self.tries_loaded
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


@dataclass(frozen=True)
class QuietTime:
    """The reference's quiet time as measured, with the other work seen while it was: a
    ``contended`` one (every try saw another process hold ``busy_limit`` cores or more) is
    the loaded device's speed, not its quiet one."""

    ms: float
    busy_cores: float | None = None
    contended: bool = False
    tries: int = 1


def quiet_time_probed(timer: Timer, protocol: Protocol = DEFAULT_PROTOCOL, contention=None,
                      busy_limit: float | None = None, tries: int = 3,
                      busy_wait_s: float = 0.0) -> QuietTime:
    """``quiet_time``, taken again (after ``busy_wait_s``) while ``contention`` sees other work
    holding ``busy_limit`` cores, up to ``tries`` times; the least contended try is kept."""
    import time

    got: list[QuietTime] = []
    for attempt in range(1, max(1, tries) + 1):
        if contention is not None:
            contention.start()
        t0 = time.monotonic()
        window = getattr(contention, "min_window_s", 0.0)
        ms = [quiet_time(timer, protocol)]
        while time.monotonic() - t0 < window:            # the probe's window: more blocks
            ms.append(quiet_time(timer, protocol))
        ms = float(np.median(ms))
        busy = contention.cores() if contention is not None else None
        contended = busy is not None and busy_limit is not None and busy >= busy_limit
        got.append(QuietTime(ms, busy, contended, attempt))
        if not contended:
            break
        if attempt < tries and busy_wait_s > 0:
            time.sleep(busy_wait_s)
    best = min(got, key=lambda q: (q.contended, q.busy_cores or 0.0, q.ms))
    return QuietTime(best.ms, best.busy_cores, best.contended, len(got))


#: what a module switched to runs, untimed, before its timed block (ms): on this 2-core host a
#: network's first runs after another module took 2.0x, 1.5x, 1.25x its steady time, and it
#: was steady after about 3 ms; timed cold, a 0.55 ms reference block read 1.9x and deflated
#: every ratio against it (the x86-host table's operators, timed in warm 1 ms blocks, by 1.35x)
WARM_MS = 3.0


def _skip(block_ms: float) -> int:
    """Untimed blocks of ``block_ms`` that warm a module up for ``WARM_MS``."""
    if block_ms <= 0:
        return 1
    return int(min(64, max(1, np.ceil(WARM_MS / block_ms))))


def _number(protocol: Protocol, run_ms: float, share: float = 1.0) -> int:
    if run_ms <= 0:
        return protocol.max_number
    return int(max(1, min(protocol.max_number,
                          np.ceil(protocol.min_repeat_ms * share / run_ms))))


def measure_batch(timers: Sequence[Timer], reference: Reference | None,
                  protocol: Protocol = DEFAULT_PROTOCOL, rounds: int | None = None,
                  threshold: float = STABILITY_THRESHOLD, tries: int = 3,
                  on_try: Callable[[int, float], None] | None = None,
                  contention=None, busy_limit: float | None = None,
                  busy_wait_s: float = 0.0,
                  load_limit: float | None = None) -> list[ABMeasurement]:
    """Time every timer in ``rounds`` interleaved rounds (``protocol.repeats`` by default),
    each round bracketed by reference blocks; one ``ABMeasurement`` per timer, in order.

    Without a reference, the items are still interleaved (drift is spread over them) and
    their measurements are raw (``corrected`` is false). ``contention`` (a probe with
    ``start()`` and ``cores()``) records the other work on the device; with ``busy_limit``
    (cores) a contended try is taken again, and with ``load_limit`` (the reference's slowdown
    over its quiet time) a loaded one, as the module says.
    """
    import time

    rounds = rounds or protocol.repeats
    for t in timers:
        if protocol.warmup:
            t(protocol.warmup, 1)
    run_ms = [min(t(1, 3)) for t in timers]
    numbers = [_number(protocol, ms) for ms in run_ms]
    skips = [_skip(n * ms) for n, ms in zip(numbers, run_ms)]
    ref_number = ref_skip = None
    quiet = reference.quiet_ms if reference is not None else None
    if reference is not None:
        reference.timer(max(1, protocol.warmup), 1)
        ref_run = min(reference.timer(1, 3))
        ref_number = _number(protocol, ref_run, 0.5)
        ref_skip = _skip(ref_number * ref_run)
    tried: list[_Try] = []
    for attempt in range(1, tries + 1):
        if contention is not None:
            contention.start()
        window = getattr(contention, "min_window_s", 0.0)
        t0 = time.monotonic()
        cols: list[list[float]] = []
        refs = [reference.timer(ref_number, ref_skip + 1)[-1]] if reference is not None else []
        # with a probe, rounds go on until its window is long enough to count in
        while len(cols) < rounds or time.monotonic() - t0 < window:
            cols.append([t(n, k + 1)[-1] for t, n, k in zip(timers, numbers, skips)])
            if reference is not None:
                refs.append(reference.timer(ref_number, ref_skip + 1)[-1])
        item_ms = np.array(cols, dtype=np.float64).T.reshape(len(timers), len(cols))
        ref_ms = np.array(refs if reference is not None else [0.0] * (len(cols) + 1))
        spread = _spread(ref_ms) if reference is not None else 0.0
        busy = contention.cores() if contention is not None else None
        contended = busy is not None and busy_limit is not None and busy >= busy_limit
        load = float(np.median(ref_ms)) / quiet if quiet else None
        loaded = load is not None and load_limit is not None and load > load_limit
        if on_try:
            on_try(attempt, spread)
        tried.append(_Try(item_ms, ref_ms, spread, busy, contended, load, loaded))
        if (reference is None or spread <= threshold) and not contended and not loaded:
            break
        if (contended or loaded) and attempt < tries and busy_wait_s > 0:
            time.sleep(busy_wait_s)
    # every try counts (a retry adds samples, it does not replace the earlier ones), except
    # that contended tries give way to uncontended ones and loaded ones to unloaded ones:
    # their ratios are biased; when every try was loaded, the least loaded one is kept
    kept = [t for t in tried if not t.contended] or tried
    n_contended = sum(t.contended for t in tried)
    n_loaded = sum(t.loaded for t in tried)
    if all(t.loaded for t in kept) and n_loaded:
        kept = [min(kept, key=lambda t: t.load)]
    else:
        kept = [t for t in kept if not t.loaded]
    busy_seen = [t.busy for t in kept if t.busy is not None]
    busy = float(np.mean(busy_seen)) if busy_seen else None
    contended = n_contended == len(tried) and n_contended > 0
    spread = min(t.spread for t in kept)
    unstable = reference is not None and spread > threshold
    flags = dict(busy_cores=busy, contended=contended, tries_contended=n_contended,
                 loaded=kept[0].loaded, tries_loaded=n_loaded)
    out = []
    for i, n in enumerate(numbers):
        raw = Latency.from_samples_ms(np.concatenate([t.item_ms[i] for t in kept]))
        if reference is None:
            out.append(ABMeasurement(raw, n, len(tried), raw=raw, **flags))
            continue
        # load only slows a block down: the faster reference block on either side is the
        # device's speed around the item's block (one spiked neighbour does not bias it)
        ratios = np.concatenate([t.item_ms[i] / np.minimum(t.ref_ms[:-1], t.ref_ms[1:])
                                 for t in kept])
        ratio = float(np.median(ratios))
        ci = (float(np.percentile(ratios, 10)), float(np.percentile(ratios, 90)))
        ref_med = float(np.median(np.concatenate([t.ref_ms for t in kept])))
        if quiet:
            lat = Latency(ratio * quiet, max(ci[1], ratio) * quiet,
                          float(np.std(ratios, ddof=1)) * quiet, int(ratios.size))
        else:
            lat = raw
        out.append(ABMeasurement(lat, n, len(tried), raw=raw, ratio=ratio, ratio_ci=ci,
                                 reference_ms=ref_med, reference_spread=spread,
                                 load=ref_med / quiet if quiet else None, unstable=unstable,
                                 **flags))
    return out


@dataclass(frozen=True)
class _Try:
    """One try of a batch: the items' and the reference's block times, the reference's
    spread, the other work seen, and the reference's load."""

    item_ms: np.ndarray
    ref_ms: np.ndarray
    spread: float
    busy: float | None
    contended: bool
    load: float | None
    loaded: bool
