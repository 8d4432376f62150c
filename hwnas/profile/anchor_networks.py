"""The anchor networks a deploy times its bundles beside when other work holds a core.

``hwnas.runtime.anchors`` says why: under a held core a bundle's A/B reading is biased by its
size. The anchors are the table's calibration networks nearest (in log latency) to the budget
times each of ``ANCHOR_AT``, in the table's units; their quiet latency on the device is their
table time on the reference's quiet basis. They are compiled on the first contended
measurement of a deploy (a few seconds each from the tuning database; a quiet deploy pays
nothing) and serve every later round.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hwnas.errors import HwnasError
from hwnas.profile.networks import calibration_networks, network_timer
from hwnas.profile.table import LatencyTable
from hwnas.runtime.anchors import Anchor

__all__ = ["ANCHOR_AT", "AnchorNetworks", "pick_anchors"]

log = logging.getLogger("hwnas.deploy")

#: the anchors' latencies, as multiples of the budget (a loop's bundles read near the budget)
ANCHOR_AT = (0.7, 1.0, 1.35)


def pick_anchors(archs: list[str], ms: np.ndarray, target_ms: float,
                 at: tuple[float, ...] = ANCHOR_AT) -> list[tuple[str, float]]:
    """(arch, table ms) of the networks nearest ``target_ms`` × each of ``at``, distinct."""
    if not len(archs) or not np.isfinite(target_ms) or target_ms <= 0:
        return []
    logs = np.log(np.maximum(np.asarray(ms, dtype=np.float64), 1e-12))
    chosen: list[int] = []
    for f in at:
        order = np.argsort(np.abs(logs - np.log(target_ms * f)), kind="stable")
        i = next((int(j) for j in order if int(j) not in chosen), None)
        if i is not None:
            chosen.append(i)
    return [(archs[i], float(ms[i])) for i in sorted(chosen, key=lambda j: ms[j])]


class AnchorNetworks:
    """A table's anchors on one device, compiled when first asked for (``get``) and kept."""

    def __init__(self, space, table: LatencyTable, scale: float, target, runtime,
                 work: Path) -> None:
        """``scale``: the device's quiet speed over its table's (the reference's quiet time
        is the table's times it), which puts the anchors' table times on that basis."""
        self.space, self.table, self.scale = space, table, scale
        self.target, self.runtime, self.work = target, runtime, work
        self._anchors: list[Anchor] | None = None
        self._failed = False

    def get(self, target_ms: float, tuning_dir: str | None) -> list[Anchor] | None:
        """The anchors around ``target_ms`` in the table's units, compiled with the tuning
        database ``tuning_dir``, or None when the table has no calibration networks or they
        fail to build (said once, in one line; the measurement then stands as read)."""
        if self._anchors is not None or self._failed:
            return self._anchors
        try:
            archs, ms = calibration_networks(self.space, self.table)
            picked = pick_anchors(archs, ms, target_ms)
            if not picked:
                self._failed = True
                return None
            anchors = [Anchor(network_timer(self.space, arch, self.target, self.runtime,
                                            self.work, f"anchor{k}", tuning_dir),
                              table_ms * self.scale, arch)
                       for k, (arch, table_ms) in enumerate(picked)]
        except HwnasError as exc:
            log.warning("the anchor networks could not be built (%s); contended bundles are "
                        "judged by their reading alone", exc)
            self._failed = True
            return None
        self._anchors = anchors
        return anchors
