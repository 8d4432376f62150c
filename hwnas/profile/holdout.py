"""Held-out whole networks: measured end to end, never used to fit a predictor.

The file sits beside the latency table (``<space>.holdout.json``) and is written atomically after
every network, so an interrupted run resumes where it stopped. Its metadata says what it is, so
no one mistakes it for calibration data.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas._checks import check_int
from hwnas._io import atomic_write_json, read_json
from hwnas.errors import TableError

__all__ = ["HOLDOUT_FORMAT", "Holdout", "holdout_path", "measure_holdout", "reference_network"]

log = logging.getLogger("hwnas.predict")

HOLDOUT_FORMAT = "hwnas-holdout/1"
PURPOSE = ("held-out whole networks for scoring latency predictors; never used to fit them "
           "(disjoint from the table's calibration networks)")


def holdout_path(table_file: str | Path) -> Path:
    p = Path(table_file)
    return p.with_name(f"{p.stem}.holdout.json")


@dataclass
class Holdout:
    meta: dict
    networks: list[dict]

    def archs(self) -> list[str]:
        return [n["arch"] for n in self.networks]

    def measured_ms(self) -> np.ndarray:
        return np.array([n["median_ms"] for n in self.networks], dtype=np.float64)

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, {"format": HOLDOUT_FORMAT, "meta": self.meta,
                                        "networks": self.networks})

    @classmethod
    def load(cls, path: str | Path) -> "Holdout":
        data = read_json(path, "held-out network file", TableError)
        if not isinstance(data, dict) or data.get("format") != HOLDOUT_FORMAT:
            raise TableError(f"{path} is not an hwnas held-out file (format '{HOLDOUT_FORMAT}')")
        return cls(dict(data["meta"]), list(data["networks"]))


def _mcpu(meta: dict) -> str | None:
    """The CPU a held-out set was measured on (older files: read off its device line)."""
    if meta.get("mcpu"):
        return str(meta["mcpu"])
    found = re.search(r"LLVM mcpu ([\w.+-]+)", str(meta.get("device", "")))
    return found.group(1) if found else None


def _open(path: Path, space, target, runtime, seed: int, n: int, rounds: int) -> Holdout:
    if path.exists():
        h = Holdout.load(path)
        if h.meta.get("space") != space.config() or h.meta.get("target") != target.name:
            raise TableError(f"{path} was measured for another space or target; remove it or "
                             f"choose another path")
        had, now = _mcpu(h.meta), getattr(target, "mcpu", "") or None
        if had and now and had != now:
            raise TableError(f"{path} was measured on CPU {had}, this is {now}: its networks "
                             "cannot be extended with this device's timings; remove it or "
                             "choose another path")
        if int(h.meta.get("network_rounds", 1)) != rounds:
            raise TableError(f"{path} was measured with {h.meta.get('network_rounds', 1)} "
                             f"round(s) per network, not {rounds}; remove it or choose another "
                             "path")
        return h
    from hwnas.profile.meta import now_iso
    from hwnas.runtime.protocol import DEFAULT_PROTOCOL

    return Holdout({"purpose": PURPOSE, "target": target.name, "space": space.config(),
                    "device": runtime.describe(), "mcpu": getattr(target, "mcpu", "") or None,
                    "seed": seed, "n_requested": n,
                    "protocol": DEFAULT_PROTOCOL.to_json(), "network_rounds": rounds,
                    "created": now_iso(),
                    "measurement": "the profiler's network build and interleaved timing "
                                   "with the table's reference network (drift-corrected)"},
                   [])


def reference_network(table, space) -> dict | None:
    """The table's calibration network of ``space`` with the median latency:
    ``{"arch", "median_ms"}``, or None when the table has none."""
    from hwnas.profile.networks import calibration_networks

    archs, ms = calibration_networks(space, table)
    if not archs:
        return None
    i = int(np.argsort(ms, kind="stable")[len(ms) // 2])
    return {"arch": archs[i], "median_ms": float(ms[i])}


def _loaded(rec: dict) -> bool:
    """Whether a record was timed while the reference ran over ``LOAD_LIMIT`` its quiet time."""
    from hwnas.runtime.reference import LOAD_LIMIT

    return bool(rec.get("loaded")) or (rec.get("load") or 0.0) > LOAD_LIMIT


def _better(new: dict, old: dict) -> bool:
    """Whether ``new`` is the better of two timings of a network: unloaded before loaded (of
    two loaded ones, the less loaded), then the smaller reference spread."""
    def key(rec: dict) -> tuple:
        loaded = _loaded(rec)
        load = (rec.get("load") or 0.0) if loaded else 0.0
        return loaded, load, rec.get("reference_spread", 1.0)

    return key(new) < key(old)


def measure_holdout(space, target, runtime, path: str | Path, n: int, seed: int,
                    max_new: int | None = None, workers: int = 2, rounds: int = 5,
                    table=None, tuning_dir: str | None = None, retest: int = 0,
                    retake_unstable: int = 0, retake_loaded: int = 0,
                    busy_wait_s: float | None = None) -> Holdout:
    """Measure the missing ones of ``n`` held-out archs, saving after each network.

    The archs are ``sample_archs(space, n, seed)``: with a seed other than the profiler's
    they do not meet its calibration networks (scorers still drop any that do). They are
    compiled ``workers`` at a time in waves (``hwnas.profile.pool``), with ``tuning_dir`` as
    the table's networks were, and each wave is timed only once its compiles have finished,
    interleaved with the ``table``'s reference network exactly as the table's own networks
    are (``profile.profiler``): each record holds the drift-corrected latency (in the table's
    scale), the raw one, the ratio and the device's load. ``retest`` re-times that many
    networks measured in an earlier run (the first ones not yet re-timed) into ``retests``:
    the same network, measured again, shows how well a measurement repeats.
    ``retake_unstable`` times again that many networks whose record the stability gate
    flagged ``unstable`` (the reference moved during it) and that were never retaken: the
    steadier of the two (the smaller reference spread) is the network's record, the other is
    kept in ``meta["retaken"]``. Which networks are retaken depends only on how they were
    measured, never on how well any predictor scores them. ``retake_loaded`` does the same
    for that many networks timed while the reference ran over ``LOAD_LIMIT`` times its quiet
    time (a load from outside biases the ratios), retaken or not before; of two timings, one
    under the limit is kept before a loaded one, then the steadier. ``busy_wait_s``: the
    wait before a loaded or contended wave is timed again (the profiler's by default).
    """
    import tempfile

    from hwnas.profile.build import BuildTask
    from hwnas.profile.meta import now_iso
    from hwnas.profile.networks import sample_archs
    from hwnas.profile.pool import BuildPool
    from hwnas.profile.profiler import PhaseTime, ProfileOptions, run_waves
    from hwnas.profile.reference import BUSY_WAIT_S, open_reference

    for value, name in ((n, "held-out networks"), (retest, "retest"),
                        (retake_unstable, "retake_unstable"), (retake_loaded, "retake_loaded")):
        check_int(value, name, 0, error=TableError)
    path = Path(path)
    h = _open(path, space, target, runtime, seed, n, rounds)
    done = set(h.archs())
    todo = [str(a) for a in sample_archs(space, n, seed) if str(a) not in done]
    if max_new is not None:
        todo = todo[:max_new]
    retests = h.meta.setdefault("retests", []) if retest else h.meta.get("retests", [])
    again = {r["arch"] for r in retests}
    redo_set = set([a for a in h.archs() if a not in again][:retest])
    retaken = (h.meta.setdefault("retaken", []) if retake_unstable or retake_loaded
               else h.meta.get("retaken", []))
    was_retaken = {r["arch"] for r in retaken}
    retake_set = set([n["arch"] for n in h.networks if n.get("unstable")
                      and n["arch"] not in was_retaken and n["arch"] not in redo_set]
                     [:retake_unstable])
    retake_set |= set([n["arch"] for n in h.networks if _loaded(n) and n["arch"] not in redo_set
                       and n["arch"] not in retake_set][:retake_loaded])
    h.meta["tuning_dir"] = None if tuning_dir is None else Path(tuning_dir).name

    def save(item, m) -> None:
        rec = {"arch": item.key, **m.latency.to_json(), **m.extra(), "measured": now_iso(),
               "load_avg_1m": round(os.getloadavg()[0], 2)}
        if item.key in retake_set:
            i = next(j for j, x in enumerate(h.networks) if x["arch"] == item.key)
            first = h.networks[i]
            steadier = _better(rec, first)
            if steadier:
                h.networks[i] = rec
            retaken.append({**(first if steadier else rec), "kept": "retake" if steadier
                            else "first"})
            log.info("retook %s: %.3f ms (spread %.0f%%), first %.3f ms (spread %.0f%%): kept "
                     "the %s", item.key, rec["median_ms"],
                     100 * rec.get("reference_spread", 0), first["median_ms"],
                     100 * first.get("reference_spread", 0),
                     "retake" if steadier else "first")
        elif item.key in redo_set:
            first = next(x for x in h.networks if x["arch"] == item.key)
            retests.append({**rec, "first_ms": first["median_ms"],
                            "first_raw_ms": first.get("raw_ms"),
                            "first_measured": first.get("measured")})
            log.info("re-timed %s: %.3f ms (first %.3f ms)", item.key, rec["median_ms"],
                     first["median_ms"])
        else:
            h.networks.append(rec)
            log.info("held-out %d/%d: %s %.3f ms", len(h.networks), n, item.key,
                     m.latency.median_ms)
        h.meta["updated"] = now_iso()
        h.save(path)

    archs = todo + [a for a in h.archs() if a in redo_set or a in retake_set]
    meta = table.meta if table is not None else None
    with tempfile.TemporaryDirectory(prefix="hwnas-holdout-") as tmp, BuildPool(workers) as pool:
        with open_reference(pool, runtime, target, space, tmp, tuning_dir, meta) as reference:
            if reference is not None and "reference" not in h.meta:
                h.meta["reference"] = {"arch": reference.name, "quiet_ms": reference.quiet_ms}
            tasks = [BuildTask(f"net{i}", target, tmp, runtime.family, arch=a,
                               space_config=space.config(), tuning_dir=tuning_dir)
                     for i, a in enumerate(archs)]
            opts = ProfileOptions(workers=workers, busy_wait_s=BUSY_WAIT_S
                                  if busy_wait_s is None else busy_wait_s)
            run_waves(pool, tasks, runtime, opts, PhaseTime(), save,
                      "held-out", rounds, reference)
    return h
