"""A table's reference network: the fixed network every measurement is interleaved with.

The reference is the space's middle architecture (the middle choice of every gene), built like
any whole network. Its quiet time, measured when the table is started, is the table's scale:
every entry is stored as its drift-corrected latency, ``ratio × quiet_ms``, with the raw time
and the ratio beside it, so that a table taken on a busy day still describes the quiet
device. ``meta["reference"]`` holds the arch, the quiet time, and the reference's median and
load in each measurement wave. A table without it (an older one) is uncorrected.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from hwnas.profile.build import INPUT, BuildTask
from hwnas.profile.build_cache import cached_network, drop
from hwnas.profile.networks import random_input
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Protocol
from hwnas.runtime.contention import BUSY_CORES
from hwnas.runtime.reference import Reference, quiet_time_probed

__all__ = ["reference_arch", "stored_reference", "open_reference", "busy_line", "record_wave",
           "lower_quiet_time",
           "BUSY_WAIT_S"]

log = logging.getLogger("hwnas.profile")

#: seconds to wait before timing again what another process contended (profile, adapt,
#: held-out networks: none of them is waited on by a user at the device)
BUSY_WAIT_S = 5.0


def reference_arch(space):
    """The space's middle architecture: the middle choice of every gene."""
    sizes = np.asarray(space.choice_sizes())
    return space.from_genome((sizes // 2).astype(np.int16))


def stored_reference(meta: dict, space) -> dict | None:
    """``meta["reference"]`` when it is this space's reference with a quiet time, else None."""
    ref = meta.get("reference")
    if not isinstance(ref, dict) or not ref.get("quiet_ms"):
        return None
    if ref.get("arch") != str(reference_arch(space)):
        return None
    return ref


def busy_line(load: float | None, spread: float | None = None) -> str:
    """"device busy: the reference ran 1.42x its quiet time (spread 23%)"."""
    if load is None:
        return "device load unknown (no reference)"
    text = f"the reference ran {load:.2f}x its quiet time"
    if spread is not None:
        text += f" (spread {100 * spread:.0f}%)"
    return text


def record_wave(meta: dict, info: dict) -> bool:
    """Keep one measurement wave's reference figures (``info``: its median, spread, load) in
    ``meta["reference"]["waves"]``; False when ``meta`` has no reference."""
    from hwnas.profile.meta import now_iso

    ref = meta.get("reference")
    if not isinstance(ref, dict):
        return False
    ref.setdefault("waves", []).append({"at": now_iso(), **info})
    return True


@contextlib.contextmanager
def open_reference(pool, runtime, target, space, tmp: str, tuning_dir: str | None,
                   meta: dict | None = None, protocol: Protocol = DEFAULT_PROTOCOL
                   ) -> Iterator[Reference | None]:
    """Build the reference network, and yield it with its quiet time: the one stored in
    ``meta`` (a resumed table keeps its scale), else measured now and stored there. Yields
    None for runtimes that cannot interleave (a device farm), or when the reference fails
    to build or run: measurements are then raw, and say so."""
    from hwnas.errors import HwnasError

    if hasattr(runtime, "measure_items"):
        yield None
        return
    arch = reference_arch(space)
    task = BuildTask("reference", target, tmp, runtime.family, arch=str(arch),
                     space_config=space.config(), tuning_dir=tuning_dir)
    try:
        item, cached = cached_network(pool, task)
        try:
            timer = runtime.timer(item.path, {INPUT: random_input(item.input_shape)}, item.func)
        except HwnasError:
            if not cached:
                raise
            log.info("cached reference library %s did not load: building it again", item.path)
            drop(item)
            item, cached = cached_network(pool, task)
            timer = runtime.timer(item.path, {INPUT: random_input(item.input_shape)}, item.func)
        stored = stored_reference(meta, space) if meta is not None else None
        probed = None if stored else quiet_time_probed(
            timer, protocol, runtime.contention(), BUSY_CORES, busy_wait_s=BUSY_WAIT_S)
        quiet = stored["quiet_ms"] if stored else probed.ms
    except HwnasError as exc:
        log.warning("reference network %s failed (%s): measuring without it, uncorrected",
                    arch, exc)
        yield None
        return
    if meta is not None and not stored:
        from hwnas.profile.meta import now_iso

        meta["reference"] = {"arch": str(arch), "quiet_ms": round(quiet, 6),
                             "measured": now_iso(), "device": runtime.describe(),
                             "statistic": "10th percentile of 30 blocks of >= min_repeat_ms/2"}
        if probed.busy_cores is not None:
            meta["reference"].update(busy_cores=round(probed.busy_cores, 3),
                                     contended=probed.contended)
        if probed.contended:
            log.warning("other processes held %.2f cores while the reference's quiet time was "
                        "taken (%d tries): the table's scale is the busy device's",
                        probed.busy_cores, probed.tries)
    log.info("reference %s: quiet time %.4f ms", arch, quiet)
    try:
        yield Reference(timer, quiet, str(arch))
    finally:
        if Path(item.path).parent == Path(tmp):      # a fresh build the cache did not keep
            Path(item.path).unlink(missing_ok=True)


#: a reference faster than this share of its probed quiet time shows that the probe was not quiet
FASTER_THAN_QUIET = 0.95


def lower_quiet_time(records: list[dict], reference: dict | None) -> float:
    """Re-scale drift-corrected ``records`` (``median_ms`` = ratio x the reference's quiet
    time) to the fastest the reference ran among them, when that is under
    ``FASTER_THAN_QUIET`` of its probed quiet time: the probe then caught a slow moment of the
    host, and every corrected figure was inflated by it (the samples of one few-shot fit read
    1.51x their networks' later timings; the reference had run at x0.69-0.70 its probe
    throughout). ``reference`` (the ``meta["reference"]`` dict) gets the lowered quiet time.
    Returns the factor applied (1.0: none)."""
    loads = [r.get("load") for r in records]
    if not records or not reference or any(not isinstance(v, (int, float)) or v <= 0
                                           for v in loads):
        return 1.0
    scale = float(min(loads))
    if scale >= FASTER_THAN_QUIET:
        return 1.0
    for r in records:
        for k in ("median_ms", "p90_ms", "std_ms"):
            if isinstance(r.get(k), (int, float)):
                r[k] = round(r[k] * scale, 6)
        r["load"] = round(r["load"] / scale, 4)
    reference["probed_quiet_ms"] = reference.get("quiet_ms")
    reference["quiet_ms"] = round(reference["quiet_ms"] * scale, 6)
    reference["lowered_by"] = round(scale, 4)
    return scale
