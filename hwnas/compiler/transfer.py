"""A CPU model with no tuning database of its own starts from those of the other CPU models.

Schedules tuned on one x86 CPU are good first guesses on another, but rarely the best (the
Rocket Lake database ran 1.15× onnxruntime at the median on a Zen 3, against 0.75× on its own
CPU). So nothing is taken on trust: for each kernel of the space, the best record of every
other CPU's published database of the same target and the kernel's default schedule (no
schedule at all: what ships when a database has no record for it) are built and timed here,
with the tuner's own builder and runner, and each becomes a record of this CPU's work database
with the seconds measured here. Publishing keeps each kernel's fastest record, so no kernel
ends slower than its default schedule. Tuning then starts its evolutionary search from these
records.

Progress is saved after each chunk of kernels (``transfer`` in the work folder's
``tuning.json``): an interrupted transfer resumes with the kernels it had not measured.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hwnas._io import atomic_write_json
from hwnas.compiler.database import (MANIFEST, check_device, database_parts, last_line,
                                     load_database, read_manifest)
from hwnas.errors import ExportError, HwnasError

__all__ = ["ForeignDatabase", "foreign_databases", "transfer_records", "DEFAULT_SOURCE"]

log = logging.getLogger("hwnas.compiler")

#: the source name of a kernel's default (unscheduled) candidate
DEFAULT_SOURCE = "default"
_CHUNK = 24                                   # kernels measured between progress saves


@dataclass(frozen=True)
class ForeignDatabase:
    """A published database of the same target, tuned on another CPU model."""

    cpu: str
    path: Path
    database: object


def foreign_databases(target) -> tuple[list[ForeignDatabase], dict[str, str]]:
    """Every published database of ``target`` tuned on another CPU model (``tuning/`` and
    ``tuning-<cpu>/`` in each latency-table folder, the user's first; every configuration
    folder in it, even where the folder holds no database of its own), and the ones skipped
    with why: a database of another device, or a corrupt one (named by its folder; the
    transfer goes on without it)."""
    from hwnas import _data

    found: list[ForeignDatabase] = []
    skipped: dict[str, str] = {}
    seen: set[str] = set()
    for root in _data.search_dirs("latency_tables"):
        base = root / target.name
        if not base.is_dir():
            continue
        for d in sorted(p for p in base.iterdir() if p.is_dir() and
                        (p.name == "tuning" or p.name.startswith("tuning-"))):
            try:
                parts = database_parts(d)          # a folder of configuration folders only too
                tgt = read_manifest(parts[0]).get("target") if parts else None
                if not isinstance(tgt, dict):
                    continue                     # no published database here
                cpu = str(tgt.get("mcpu") or "")
                if not cpu or cpu == target.mcpu or cpu in seen:
                    continue                     # this CPU's own, or one met already
                check_device(d, tgt, target)
                db = load_database(d, required=True)
            except HwnasError as exc:
                skipped[str(d)] = str(exc)
                log.warning("skipping the tuning database %s: %s", d, exc)
                continue
            seen.add(cpu)
            found.append(ForeignDatabase(cpu, d, db))
    return found, skipped


def _candidates(task, sources: list[ForeignDatabase], tvm_target):
    """(source name, tuning record or None, schedule) of each candidate of one kernel: the
    other CPUs' best records, then the default schedule."""
    from tvm.s_tir import Schedule

    mod, name = task.dispatched[0], task.task_name
    out = []
    for src in sources:
        try:
            rec = src.database.query_tuning_record(mod, tvm_target, name)
            if rec is None:
                continue
            sch = Schedule(rec.workload.mod)
            rec.trace.apply_to_schedule(sch, remove_postproc=False)
        except Exception as exc:  # noqa: BLE001  (TVM raises its own errors for a bad trace)
            log.debug("%s: the record of %s does not replay here: %s", name, src.cpu,
                      last_line(exc))
            continue
        out.append((src.cpu, rec, sch))
    out.append((DEFAULT_SOURCE, None, _default_schedule(mod)))
    return out


def _default_schedule(mod):
    """The kernel as it compiles with no record, as a schedule a database can hold: MetaSchedule
    never returns a record whose trace is empty, so the trace looks its root block up (an
    instruction that changes nothing)."""
    from tvm.s_tir import Schedule

    sch = Schedule(mod)
    try:
        sch.get_sblock("root")
    except Exception:  # noqa: BLE001  (a kernel without a root block keeps the empty trace)
        pass
    return sch


def _commit(db, task, cand, secs, tvm_target) -> bool:
    """Record one measured candidate in this CPU's work database. The fastest candidate is
    committed first, so the workload it is filed under is the one whose block names its
    trace uses; a slower candidate whose trace does not replay on that workload is dropped."""
    from hwnas.compiler._metaschedule import meta_schedule
    from tvm.s_tir import Schedule
    ms = meta_schedule()

    source, rec, sch = cand
    workload = db.commit_workload(rec.workload.mod if rec is not None else task.dispatched[0])
    trace = sch.trace
    try:
        trace.apply_to_schedule(Schedule(workload.mod), remove_postproc=False)
    except Exception:  # noqa: BLE001  (block names of another workload)
        return False
    db.commit_tuning_record(ms.database.TuningRecord(
        trace, workload, secs, tvm_target,
        ms.arg_info.ArgInfo.from_entry_func(sch.mod, remove_preproc=True)))
    return True


def transfer_records(kernels: list, tasks: dict, sources: list[ForeignDatabase], session,
                     work: Path, man: dict, *, stop: Callable[[], bool] = lambda: False,
                     emit: Callable[[dict], None] = lambda info: None) -> dict[str, dict]:
    """Measure every kernel's candidates (see the module docstring) and commit them to the
    work database of ``session``, heaviest kernels first; ``man`` (the work folder's
    ``tuning.json``) keeps, per kernel, each source's seconds and which one won, saved after
    every chunk. Kernels already in ``man["transfer"]`` are skipped (a resumed run). Returns
    ``man["transfer"]``. ``stop()`` is asked between chunks."""
    import time

    done = man.setdefault("transfer", {})
    todo = [k for k in kernels if k.key not in done]
    tvm_target = session.tvm_target
    t0 = time.monotonic()
    for start in range(0, len(todo), _CHUNK):
        if stop():
            break
        part = todo[start:start + _CHUNK]
        cands = [_candidates(tasks[k.key], sources, tvm_target) for k in part]
        flat = [c for cs in cands for c in cs]
        try:
            secs = session.measure([c[2] for c in flat])
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"measuring transferred schedules failed: {last_line(exc)}") \
                from None
        i = 0
        for k, cs in zip(part, cands):
            mine = secs[i:i + len(cs)]
            i += len(cs)
            order = sorted(range(len(cs)), key=lambda j: _mean(mine[j]))
            kept = [cs[j][0] for j in order
                    if mine[j] is not None and _commit(session.database, tasks[k.key], cs[j],
                                                       mine[j], tvm_target)]
            done[k.key] = {"seconds": {c[0]: (None if s is None else round(_mean(s), 9))
                                       for c, s in zip(cs, mine)},
                           "best": kept[0] if kept else None}
        atomic_write_json(work / MANIFEST, man)
        emit({"phase": "transfer", "done": len(done), "total": len(kernels),
              "elapsed_s": time.monotonic() - t0})
    return done


def _mean(secs: list[float] | None) -> float:
    return sum(secs) / len(secs) if secs else float("inf")
