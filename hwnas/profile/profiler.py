"""``profile``: every operator of a space, then a sample of whole networks, into one table.

The loop alternates two phases so that compiling never disturbs a timing: a wave of build tasks
runs in worker processes while the parent waits; then the parent times what they built, alone,
saving the table after every entry. An interrupted run resumes from the saved table and
re-measures nothing it already has.

Every wave is timed interleaved, item by item and round after round, with the table's
reference network between rounds (``hwnas.runtime.reference``): each entry is stored
drift-corrected, ``ratio × the reference's quiet time``, with its raw time, ratio and the load
beside it. On a virtualised host one network's latency drifts by several percent between
few-second windows (re-timing the same library gave 185-212 ms), which no single window shows
and the ratio cancels. Whole networks get ``network_rounds`` times more rounds than
operators.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hwnas._checks import check_int, check_seed
from hwnas.errors import TableError
from hwnas.profile.build import INPUT, Built, BuildTask, BuiltItem
from hwnas.profile.meta import (add_space, check_emulation, check_resume, new_meta,
                                update_coverage)
from hwnas.profile.networks import (network_record, random_input, sample_archs, same_network,
                                    same_space, validation)
from hwnas.profile.pool import BuildPool, waves
from hwnas.profile.table import LatencyTable, is_table_file
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol, merge_rounds
from hwnas.profile.reference import BUSY_WAIT_S, busy_line, open_reference, record_wave
from hwnas.runtime.contention import BUSY_CORES
from hwnas.runtime.reference import (LOAD_LIMIT, STABILITY_THRESHOLD, Reference,
                                     measure_batch)

__all__ = ["ProfileOptions", "ProfileReport", "PhaseTime", "profile", "open_table"]

log = logging.getLogger("hwnas.profile")


@dataclass(frozen=True)
class ProfileOptions:
    networks: int = 50
    resume: bool = False
    workers: int = 2
    batch: int = 8                  # operators per compiled module
    tasks_per_wave: int = 0         # 0: three per worker
    limit: int | None = None        # only the first N operators of the space
    tuning_dir: str | None = None   # MetaSchedule database to compile with
    network_rounds: int = 5         # whole networks get this many times protocol.repeats blocks
    reference: bool = True          # interleave with the table's reference network (A/B)
    remeasure_networks: bool = False  # time again stored networks taken in fewer rounds
    seed: int = 0
    protocol: Protocol = DEFAULT_PROTOCOL
    busy_wait_s: float = BUSY_WAIT_S  # wait before re-timing a wave another process contended
    load_limit: float | None = LOAD_LIMIT  # re-time a wave whose reference ran this much slow

    def __post_init__(self) -> None:
        """Every count in range (a limit of 0 or -5 is an error, never "all" or "all but 5")."""
        for name, low in (("networks", 0), ("workers", 0), ("batch", 1), ("tasks_per_wave", 0),
                          ("network_rounds", 1)):
            check_int(getattr(self, name), f"profile {name}", low, error=TableError)
        if not (isinstance(self.busy_wait_s, (int, float)) and 0 <= self.busy_wait_s <= 600):
            raise TableError(f"profile busy_wait_s must be seconds in [0, 600], got "
                             f"{self.busy_wait_s!r}")
        if self.load_limit is not None and not (isinstance(self.load_limit, (int, float))
                                                and 1.0 < self.load_limit <= 10.0):
            raise TableError(f"profile load_limit must be a slowdown in (1, 10], got "
                             f"{self.load_limit!r}")
        if self.limit is not None:
            check_int(self.limit, "profile limit (operators)", 1, error=TableError)
        check_seed(self.seed, TableError)
        if not isinstance(self.protocol, Protocol):
            raise TableError(f"profile protocol must be a Protocol, got {self.protocol!r}")


@dataclass
class PhaseTime:
    compile_s: float = 0.0          # wall time spent waiting for compile waves
    measure_s: float = 0.0          # wall time spent timing (alone)
    task_s: float = 0.0             # sum of the tasks' own compile times in the workers
    kernels: int = 0                # fused kernels compiled
    kernels_tuned: int = 0          # of those, scheduled from the tuning database

    @property
    def wall_s(self) -> float:
        return self.compile_s + self.measure_s


@dataclass
class ProfileReport:
    path: Path
    n_ops: int = 0                  # operators of the space (after --limit)
    n_new: int = 0                  # operators measured in this run
    n_networks_new: int = 0
    new_networks: list[dict] = field(default_factory=list)   # records measured in this run
    ops: PhaseTime = field(default_factory=PhaseTime)
    networks: PhaseTime = field(default_factory=PhaseTime)
    cvs: list[float] = field(default_factory=list)
    validation: dict = field(default_factory=dict)
    coverage: dict = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)   # the reference's load per wave
    busy: list[tuple[float, bool]] = field(default_factory=list)  # (other cores, contended)


def open_table(path: Path, target, space, runtime, opts: ProfileOptions) -> LatencyTable:
    if path.is_dir():
        raise TableError(f"{path} is a folder, not a latency table file; choose a file path")
    if path.exists():
        if not opts.resume and not is_table_file(path):
            raise TableError(f"{path} exists and is not an hwnas latency table; profile into "
                             f"another file")
        if not opts.resume:
            raise TableError(f"{path} exists; resume it to complete it, or profile into another file")
        table = LatencyTable.load(path)
        check_resume(table, path, target, space, runtime.family, opts.protocol, opts.tuning_dir)
        check_emulation(table, path, getattr(runtime, "emulator", None))
        table.meta["device"] = runtime.describe()
        table.meta["address"] = runtime.address
        return table
    return LatencyTable(new_meta(target, space, runtime, opts.protocol, opts.tuning_dir,
                                 opts.batch))


def _measure(runtime, items: list[BuiltItem], protocol: Protocol,
             on_item: Callable[[BuiltItem, Measurement], None], bar, rounds: int = 1,
             reference: Reference | None = None, busy_wait_s: float = BUSY_WAIT_S,
             load_limit: float | None = LOAD_LIMIT) -> dict | None:
    """Time ``items`` interleaved with each other and with ``reference`` (A/B, see
    ``hwnas.runtime.reference``), ``rounds`` × ``protocol.repeats`` blocks each. On a local
    device a wave timed while another process held a core (``BUSY_CORES``) is timed again
    after ``busy_wait_s``, and flagged ``contended`` when it never ran uncontended; so is one
    whose reference ran over ``load_limit`` times its quiet time (a load from outside), flagged
    ``loaded`` when no try ran under it.

    A runtime of several devices (``measure_items``, the tracker farm) spreads whole
    measurements over its devices instead: no interleaving, raw latencies, ``rounds`` merged.
    """
    if hasattr(runtime, "measure_items"):
        if rounds == 1:                 # saved as each arrives: a lost device loses nothing
            def done(item: BuiltItem, m: Measurement) -> None:
                on_item(item, m)
                bar.update(1)

            runtime.measure_items(items, protocol, done)
            return
        got: dict[int, list[Measurement]] = {id(item): [] for item in items}
        for _ in range(rounds):
            runtime.measure_items(items, protocol, lambda item, m: got[id(item)].append(m))
        for item in items:
            on_item(item, merge_rounds(got[id(item)]))
            bar.update(1)
        return
    timers = [runtime.timer(item.path, {INPUT: random_input(item.input_shape)}, item.func)
              for item in items]

    def retry(attempt: int, spread: float) -> None:
        if attempt > 1 or spread > STABILITY_THRESHOLD:
            log.info("reference spread %.1f%% during a batch of %d (try %d)", 100 * spread,
                     len(items), attempt)

    measured = measure_batch(timers, reference, protocol, protocol.repeats * rounds,
                             on_try=retry, contention=runtime.contention(),
                             busy_limit=BUSY_CORES, busy_wait_s=busy_wait_s,
                             load_limit=load_limit)
    if measured and measured[0].contended:
        log.warning("other processes held %.2f cores while %d items were timed; kept, flagged "
                    "contended", measured[0].busy_cores, len(items))
    for item, m in zip(items, measured):
        on_item(item, m)
        bar.update(1)
    m = measured[0] if measured else None
    if m is None or m.reference_ms is None:
        return None
    if m.loaded:
        log.warning("device loaded while timing %d items (the reference ran %.2fx its quiet "
                    "time in the least loaded of %d tries); kept, flagged loaded", len(items),
                    m.load, m.attempts)
    if m.unstable:
        log.warning("device unstable while timing %d items: %s; kept, flagged unstable",
                    len(items), busy_line(m.load, m.reference_spread))
    info = {"reference_ms": round(m.reference_ms, 5), "spread": round(m.reference_spread, 4),
            "load": None if m.load is None else round(m.load, 4), "unstable": m.unstable,
            "loaded": m.loaded}
    if m.busy_cores is not None:
        info.update(busy_cores=round(m.busy_cores, 3), contended=m.contended,
                    tries_contended=m.tries_contended)
    return info


def run_waves(pool: BuildPool, tasks: list[BuildTask], runtime, opts: ProfileOptions,
               phase: PhaseTime, on_item: Callable[[BuiltItem, Measurement], None],
               desc: str, rounds: int = 1, reference: Reference | None = None,
               on_wave: Callable[[dict], None] | None = None) -> None:
    """Build ``tasks`` wave by wave, then time each wave's items interleaved with each other
    and with the ``reference`` network (``_measure``)."""
    from hwnas._log import progress

    per_wave = opts.tasks_per_wave or 3 * max(1, opts.workers)
    all_waves = list(waves(tasks, per_wave))
    bar = progress(total=sum(len(t.keys) or 1 for t in tasks), desc=desc)
    try:
        for wave in all_waves:
            t0 = time.perf_counter()
            built: list[Built] = pool.run(wave)
            t1 = time.perf_counter()
            phase.compile_s += t1 - t0
            phase.task_s += sum(b.compile_s for b in built)
            for b in built:                   # one compile per task: count its kernels once
                if b.items and b.items[0].tuned is not None:
                    phase.kernels_tuned += b.items[0].tuned[0]
                    phase.kernels += b.items[0].tuned[1]
            info = _measure(runtime, [item for b in built for item in b.items], opts.protocol,
                            on_item, bar, rounds, reference, opts.busy_wait_s,
                            opts.load_limit)
            if info and on_wave:
                on_wave(info)
            for b in built:
                for item in b.items:
                    Path(item.path).unlink(missing_ok=True)
            phase.measure_s += time.perf_counter() - t1
    finally:
        bar.close()


def _run_record(rep: ProfileReport, finished: bool) -> dict:
    import os

    from hwnas.profile.meta import now_iso

    return {"date": now_iso(), "finished": finished, "ops_measured": rep.n_new, "networks_measured": rep.n_networks_new,
            "ops_compile_s": round(rep.ops.compile_s, 2), "ops_measure_s": round(rep.ops.measure_s, 2),
            "networks_compile_s": round(rep.networks.compile_s, 2),
            "networks_measure_s": round(rep.networks.measure_s, 2),
            "kernels_tuned": [rep.ops.kernels_tuned + rep.networks.kernels_tuned,
                              rep.ops.kernels + rep.networks.kernels],
            "loadavg_1min_at_end": round(os.getloadavg()[0], 2)}


def profile(space, target, runtime, path: str | Path,
            opts: ProfileOptions = ProfileOptions()) -> ProfileReport:
    """Measure the missing operators of ``space`` and ``opts.networks`` whole subnets."""
    path = Path(path)
    report = ProfileReport(path)
    table = open_table(path, target, space, runtime, opts)
    add_space(table.meta, space)
    update_coverage(table)
    table.save(path)

    ops = space.op_list[:opts.limit] if opts.limit else list(space.op_list)
    report.n_ops = len(ops)
    todo = [op for op in ops if op.key not in table]
    log.info("%s: %d of %d operators to measure on %s", path, len(todo), len(ops), runtime.address)

    finished = False
    try:
        _profile_into(table, path, space, target, runtime, opts, report, todo)
        finished = True
    finally:                             # an interrupted run still says what it cost
        table.meta.setdefault("runs", []).append(_run_record(report, finished))
        table.save(path)
    return report


def _profile_into(table: LatencyTable, path: Path, space, target, runtime,
                  opts: ProfileOptions, report: ProfileReport, todo: list) -> None:
    def save_op(item: BuiltItem, m: Measurement) -> None:
        table.add(item.key, m.latency, **m.extra())
        table.save(path)
        report.n_new += 1
        report.cvs.append(m.cv)

    def save_net(item: BuiltItem, m: Measurement) -> None:
        rec = {**network_record(space, space.parse(item.key), m),
               "network_rounds": opts.network_rounds}
        table.meta["networks"].append(rec)
        table.save(path)
        report.n_networks_new += 1
        report.new_networks.append(rec)

    def wave(info: dict) -> None:
        if record_wave(table.meta, info):
            report.loads.append(info["load"])
            if info.get("busy_cores") is not None:
                report.busy.append((info["busy_cores"], bool(info.get("contended"))))

    with tempfile.TemporaryDirectory(prefix="hwnas-profile-") as tmp, \
            BuildPool(opts.workers) as pool, \
            open_reference(pool, runtime, target, space, tmp, opts.tuning_dir,
                           table.meta if opts.reference else None, opts.protocol) as reference:
        if opts.reference and reference is None:
            table.meta["corrected"] = False
        table.save(path)

        def task(name: str, **kw) -> BuildTask:
            return BuildTask(name, target, tmp, runtime.family, tuning_dir=opts.tuning_dir, **kw)

        op_tasks = [task(f"ops{i}", keys=tuple(op.key for op in todo[i:i + opts.batch]),
                         family=todo[i].family, space_config=space.config())
                    for i in range(0, len(todo), opts.batch)]
        run_waves(pool, op_tasks, runtime, opts, report.ops, save_op, "operators", 1,
                  reference, wave)
        update_coverage(table)
        table.save(path)

        stored = table.meta.setdefault("networks", [])
        if opts.remeasure_networks:
            stored[:] = [r for r in stored if not same_space(r, space)
                         or r.get("network_rounds", 1) >= opts.network_rounds]
        table.meta["network_rounds"] = opts.network_rounds
        archs = [a for a in sample_archs(space, opts.networks, opts.seed, extremes=True)
                 if not any(same_network(r, space, a) for r in stored)]
        net_tasks = [task(f"net{i}", arch=str(a), space_config=space.config())
                     for i, a in enumerate(archs)]
        run_waves(pool, net_tasks, runtime, opts, report.networks, save_net, "networks",
                  opts.network_rounds, reference, wave)

    table.meta["validation"] = report.validation = validation(table)
    report.coverage = update_coverage(table)
