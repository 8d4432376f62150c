"""How a deploy times the device: the reference network first (round 0), then each bundle.

Round 0 (``time_reference``) times the table's reference network now: its quiet time over the
table's is the device's scale against its table (a device uniformly slower, with fewer
threads, say, is one factor), and the reference then brackets every bundle measurement, so
that each is drift-corrected to the device's quiet speed (``hwnas.runtime.reference``). An
older table (no reference network) or a few-shot predictor re-times one of its own networks
instead, for the predictor to learn from, and bundles are then measured raw. On a local device
where other processes held half a core or more through every try
(``hwnas.runtime.contention``), the slowdown is load, not the device: the table's scale is
kept.

A bundle (``measure_bundle``) is timed interleaved with the reference over ``DEPLOY_ROUNDS``
rounds, and a contended reading again beside the table's anchor networks
(``hwnas.profile.anchor_networks``), divided by their bias at its size.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.profile.anchor_networks import AnchorNetworks
from hwnas.profile.holdout import reference_network
from hwnas.profile.networks import measure_network, network_timer
from hwnas.profile.reference_network import busy_line
from hwnas.profile.table import LatencyTable
from hwnas.runtime.anchors import AnchorFit, measure_anchored
from hwnas.runtime.contention import BUSY_CORES
from hwnas.runtime.latency import Latency
from hwnas.runtime.reference import Reference, measure_batch, quiet_time_probed

__all__ = ["BUSY_WAIT_S", "DEPLOY_ROUNDS", "ReferenceReading", "time_reference",
           "BundleLatency", "measure_bundle"]

log = logging.getLogger("hwnas.deploy")

#: seconds to wait before timing again what another process contended
BUSY_WAIT_S = 2.0
#: interleaved rounds of a bundle's measurement (the reference's default is 10)
DEPLOY_ROUNDS = 60


@dataclass(frozen=True)
class ReferenceReading:
    """Round 0's reading: ``arch`` timed now (``measured_ms``) against its table time.

    ``corrected``: the table's reference network, whose quiet time gives the device's
    ``scale`` (``scale_from`` says how); else one of the predictor's own networks, fed back
    to it, and the bundles are measured raw."""

    arch: str
    table_ms: float
    measured_ms: float
    corrected: bool
    scale: float | None = None
    scale_from: str | None = None
    busy_cores: float | None = None
    contended: bool = False

    def to_json(self) -> dict:
        ratio = round(self.measured_ms / self.table_ms, 4)
        if not self.corrected:
            return {"arch": self.arch, "table_ms": self.table_ms,
                    "measured_ms": round(self.measured_ms, 4), "ratio": ratio,
                    "corrected": False}
        quiet = round(self.measured_ms, 5)
        out = {"arch": self.arch, "table_quiet_ms": self.table_ms, "quiet_ms": quiet,
               "scale": round(self.scale, 4), "corrected": True, "scale_from": self.scale_from,
               # what older readers look for
               "table_ms": self.table_ms, "measured_ms": quiet, "ratio": ratio}
        if self.busy_cores is not None:
            out.update(busy_cores=round(self.busy_cores, 3), contended=self.contended)
        return out


def _stored_reference(space, table: LatencyTable | None):
    """(arch, the table's quiet ms) of the table's reference network, when it has one with a
    quiet time and it lies inside the deployed space; else None."""
    stored = table.meta.get("reference") if table is not None else None
    if not (isinstance(stored, dict) and stored.get("quiet_ms")):
        return None
    try:
        return space.parse(stored["arch"]), stored["quiet_ms"]
    except Exception:                # the reference lies outside the deployed resolutions
        return None


def time_reference(space, table: LatencyTable | None, fallback: dict | None, target, runtime,
                   tuning_dir: str | None, work: Path, elsewhere: str | None = None
                   ) -> tuple[ReferenceReading | None, Reference | None]:
    """Round 0 (see the module): the reading and the ``Reference`` that brackets bundle
    timings, or (reading, None) when the table has no reference network: the table's median
    calibration network, else ``fallback`` (``{"arch", "median_ms"}``: the predictor's own),
    is timed instead. (None, None) when there is none. ``elsewhere``: the table's CPU model,
    when it is not this one."""
    stored = _stored_reference(space, table)
    if stored is None:
        ref = reference_network(table, space) if table is not None else fallback
        if ref is None:
            return None, None
        ms = measure_network(space, space.parse(ref["arch"]), target, runtime,
                             tuning_dir=tuning_dir).median_ms
        log.info("reference %s: %.3f ms now, %.3f ms when the predictor saw it (x%.3f); "
                 "bundles measured raw (no reference network)", ref["arch"], ms,
                 ref["median_ms"], ms / ref["median_ms"])
        return ReferenceReading(ref["arch"], ref["median_ms"], ms, corrected=False), None
    arch, table_quiet = stored
    timer = network_timer(space, arch, target, runtime, work, "reference", tuning_dir)
    probed = quiet_time_probed(timer, contention=runtime.contention(), busy_limit=BUSY_CORES,
                               busy_wait_s=BUSY_WAIT_S)
    scale, scale_from = _scale(probed, float(table_quiet), elsewhere, str(arch), target)
    reading = ReferenceReading(str(arch), table_quiet, probed.ms, True, scale, scale_from,
                               probed.busy_cores, probed.contended)
    return reading, Reference(timer, float(table_quiet) * scale, str(arch))


def _scale(probed, table_quiet: float, elsewhere: str | None, arch: str,
           target) -> tuple[float, str]:
    """The device's quiet speed over its table's, and where that figure came from."""
    seen = probed.ms / table_quiet
    if probed.contended and elsewhere is not None:
        # the table's CPU is another (x0.24 to x4 this one): its scale means nothing here,
        # and the quiet speed cannot be read off a busy device (under one held core of two,
        # every single run of the reference took x1.8-2.6 its quiet time, none faster).
        # The loaded speed is an upper bound: budgets are judged conservatively
        log.warning("device busy: other processes held %.2f cores while the reference was "
                    "timed, and the table was measured on CPU %s, not %s: this device's "
                    "quiet speed is unknown, so it is judged at its loaded speed (x%.3f its "
                    "table), which is conservative; deploy while it is quiet, or profile its "
                    "own table", probed.busy_cores, elsewhere, target.mcpu, seen)
        return seen, "the reference now, busy (the table's CPU is another)"
    if probed.contended:
        # a core held by other work slows the reference by the share of its parallel
        # speed-up it loses, not by a device factor: taking that for the device's scale put
        # every prediction and corrected latency x1.25-1.6 too slow, and refused budgets the
        # quiet device met
        log.warning("device busy: other processes held %.2f cores while the reference was "
                    "timed (it ran x%.2f its table time); the table's scale is kept, not "
                    "learnt from a busy device", probed.busy_cores, seen)
        return 1.0, "the table (device busy)"
    log.info("reference %s: quiet %.4f ms now, %.4f ms in the table: the device runs "
             "x%.3f its table", arch, probed.ms, table_quiet, seen)
    return seen, "the reference now"


@dataclass(frozen=True)
class BundleLatency:
    """A bundle's latency on the device: drift-corrected (``ratio`` to the reference times its
    quiet time; divided by the anchors' bias when ``anchored``), with the ``raw`` time beside
    it, or raw alone without a reference. Figures are rounded as the manifest records them."""

    latency: Latency
    raw: Latency
    corrected: bool
    runtime: str
    device: str
    emulator: str | None
    protocol: str
    ratio: float | None = None
    load: float | None = None
    reference_spread: float | None = None
    unstable: bool = False
    anchored: AnchorFit | None = None
    busy_cores: float | None = None
    contended: bool = False
    # the bundle through its own ``runner.py`` in a fresh process, raw (``hwnas.runtime.
    # as_shipped``): how a program on this machine runs it; None where it was not timed so
    shipped: Latency | None = None

    @property
    def median_ms(self) -> float:
        return self.latency.median_ms

    def to_json(self) -> dict:
        out = {**self.latency.to_json(), "raw": self.raw.to_json(), "corrected": self.corrected,
               "runtime": self.runtime, "device": self.device,
               "emulated": self.emulator is not None, "emulator": self.emulator,
               "protocol": self.protocol}
        if self.corrected:
            out.update(ratio=self.ratio, load=self.load, reference_spread=self.reference_spread,
                       unstable=self.unstable)
        if self.anchored is not None:
            out["anchored"] = self.anchored.to_json()
        if self.busy_cores is not None:
            out.update(busy_cores=self.busy_cores, contended=self.contended)
        if self.shipped is not None:
            out["shipped"] = {**self.shipped.to_json(),
                              "how": "runner.py in a fresh process, per call from Python"}
        return out


def measure_bundle(library: Path, input_shape, runtime, reference: Reference | None,
                   anchors: AnchorNetworks | None, table_budget_ms: float,
                   tuning_dir: str | None) -> BundleLatency:
    """The compiled ``library`` timed on ``runtime``: interleaved with ``reference``
    (drift-corrected to the device's quiet speed, raw beside it), or raw without one. A
    contended reading is timed again beside ``anchors`` (around ``table_budget_ms``, the
    budget in the table's units; compiled with ``tuning_dir`` when first needed) and divided
    by their bias at it."""
    x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
    timer = runtime.timer(library, {"input": x})
    m, = measure_batch([timer], reference, rounds=DEPLOY_ROUNDS,
                       contention=runtime.contention(), busy_limit=BUSY_CORES,
                       busy_wait_s=BUSY_WAIT_S)
    fit = None
    if m.contended and m.corrected and anchors is not None:
        got = anchors.get(table_budget_ms, tuning_dir)
        if got:
            # one try: under lasting contention more tries only wait; a try the other work
            # left alone is a clean reading, which stands
            m, fit = measure_anchored(timer, reference, got, rounds=DEPLOY_ROUNDS, tries=1,
                                      contention=runtime.contention(), busy_limit=BUSY_CORES)
    figures: dict = {}
    if m.corrected:
        figures.update(ratio=round(m.ratio, 5), load=round(m.load, 4),
                       reference_spread=round(m.reference_spread, 4), unstable=m.unstable)
    if m.busy_cores is not None:
        figures.update(busy_cores=round(m.busy_cores, 3), contended=m.contended)
    out = BundleLatency(m.latency, m.raw, m.corrected, type(runtime).__name__,
                        runtime.describe(), getattr(runtime, "emulator", None),
                        "A/B with the table's reference network" if reference else "raw",
                        anchored=fit, **figures)
    _say(m, fit)
    return out


def _say(m, fit: AnchorFit | None) -> None:
    """Warn of an unstable or contended measurement, in one line."""
    if m.corrected and m.unstable:
        log.warning("the device was unstable while the bundle was timed: %s",
                    busy_line(m.load, m.reference_spread))
    if m.busy_cores is None:
        return
    if fit is not None:
        log.warning("device busy: other processes held %.2f cores while the bundle was "
                    "timed; it read %.3f ms, x%.3f as %d anchor networks timed beside it "
                    "read at its size: %.3f ms", m.busy_cores, fit.read_ms, fit.bias,
                    len(fit.points), m.latency.median_ms)
    elif m.contended:
        log.warning("device busy: other processes held %.2f cores while the bundle was "
                    "timed (%d tries); its drift-corrected latency may read slow (a held "
                    "core costs each network its own share of parallel speed-up)",
                    m.busy_cores, m.tries_contended)
