"""Tune every fused kernel a search space can produce, once per device.

**Which kernels.** A subnet is a chain of the space's operators (``space.ops(arch)``), and
every operator configuration any subnet can hold is in ``space.op_list``: the space enumerates
block choice × resolution × the shapes each implies, and the contract test checks that
``ops(arch)`` stays inside it. TVM's fusion never joins two operators of a chain, because each
one starts with a convolution, which no fusion group can absorb as an epilogue (the residual
add and activations fuse *into* the convolution before them, inside the operator). So the
kernels of the space are exactly the union of the kernels of its operators, compiled one at a
time, and that is what ``enumerate_kernels`` extracts, after the same passes as the tuned
compile (``fuse_for_tuning``). ``tests/test_space_tuning.py`` checks the claim on random whole
subnets.

**How many trials each.** A kernel weighs what it costs in the space: its expected number of
occurrences in a random subnet times its untuned latency (the operator's table latency split
over its kernels by their FLOPs; the FLOPs alone when there is no table). Kernels are ranked by
weight; those carrying the first half of the space's expected untuned time get the most trials
(``TIERS``), the long tail the fewest. Every kernel first gets the minimum, heaviest first, so
a run cut short still covers the whole space; then the heavy ones are topped up.

**Resumable.** MetaSchedule commits each measured candidate to the work folder's database as it
goes; the trials a kernel has had are counted from those records, so a killed run loses
nothing it finished. ``minutes`` stops between chunks, a chunk sized from the speed so far to
end in time. At the end (or on an interruption) the best record of each kernel is published
to ``latency_tables/<target>/tuning/``.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hwnas._io import atomic_write_json
from hwnas.compiler.database import (DB_FILES, MANIFEST, has_database, publish, read_manifest,
                                     repair_work_dir, target_identity, unpacked)
from hwnas._checks import check_number, check_seed
from hwnas.errors import ExportError, OutputError

__all__ = ["TIERS", "TRANSFER_TIERS", "Kernel", "enumerate_kernels", "allocate", "trials_done", "tune_space",
           "SpaceTuneReport", "kernel_coverage", "seed_work_dir", "trials_spent"]

log = logging.getLogger("hwnas.compiler")

#: (cumulative share of the space's expected untuned time, trials) — heaviest kernels first
TIERS = ((0.5, 96), (0.8, 64), (0.9, 48), (0.95, 32), (1.0, 12))
#: the same after a transfer, by the share of the transferred code's time measured here: the
#: kernels carrying 80 % of it are topped up, the tail keeps its transferred schedule
TRANSFER_TIERS = ((0.5, 32), (0.8, 16), (1.0, 0))


@dataclass
class Kernel:
    key: str                       # MetaSchedule's structural hash (hex)
    name: str
    ops: list[str]                 # operator keys whose module holds it
    occurrence: float              # expected count in a random subnet
    untuned_ms: float              # estimated untuned latency of one call
    flops: float
    trials: int = 0                # allocated
    measured_ms: float | None = None   # its best schedule's latency here (after a transfer)

    @property
    def weight_ms(self) -> float:
        return self.occurrence * (self.untuned_ms if self.measured_ms is None
                                  else self.measured_ms)


def _occurrences(space, samples: int, seed: int) -> np.ndarray:
    """Expected number of times each operator appears in a uniformly sampled subnet."""
    ids = space.op_indices(space.sample_genomes(np.random.default_rng(seed), samples))
    return np.bincount(ids.ravel(), minlength=space.null_op + 1)[:space.null_op] / samples


_ENUMERATED: dict[tuple, tuple[list, dict]] = {}     # per process: (space, target) → tasks


def enumerate_kernels(space, target, op_cost_ms: dict[str, float] | None = None,
                      samples: int = 20000, seed: int = 0,
                      progress: Callable[[int, int], None] | None = None):
    """``(kernels, tasks)``: every fused kernel of the space, heaviest first, and the
    MetaSchedule task of each (by key). A process extracts a space's tasks once."""
    import tempfile

    from tvm.s_tir.analysis import estimate_tir_flops

    from hwnas.compiler.frontend import onnx_to_relax
    from hwnas.compiler.onnx_export import op_to_onnx
    from hwnas.compiler.tune import extract_tuning_tasks, workload_key

    occ = _occurrences(space, samples, seed)
    kernels: dict[str, Kernel] = {}
    tasks: dict[str, object] = {}
    cache_key = (json.dumps(space.config(), sort_keys=True), json.dumps(target.to_json()))
    per_op = _ENUMERATED.setdefault(cache_key, ([], {}))[1]
    with tempfile.TemporaryDirectory(prefix="hwnas-kernels-") as tmp:
        for i, op in enumerate(space.op_list):
            if op.key not in per_op:
                mod = onnx_to_relax(op_to_onnx(op, Path(tmp) / "op.onnx"),
                                    {"input": op.input_nchw})
                per_op[op.key] = extract_tuning_tasks(mod, target)
            found = per_op[op.key]
            flops = [max(float(estimate_tir_flops(t.dispatched[0])), 1.0) for t in found]
            total = sum(f * t.weight for f, t in zip(flops, found))
            for t, f in zip(found, flops):
                key = workload_key(t)
                share = f / total
                cost = (op_cost_ms[op.key] * share if op_cost_ms and op.key in op_cost_ms
                        else f * 1e-9)
                k = kernels.get(key)
                if k is None:
                    k = kernels[key] = Kernel(key, t.task_name, [], 0.0, cost, f)
                    tasks[key] = t
                k.ops.append(op.key)
                k.occurrence += float(occ[i]) * t.weight
            if progress:
                progress(i + 1, len(space.op_list))
    ranked = sorted(kernels.values(), key=lambda k: -k.weight_ms)
    return ranked, tasks


def allocate(kernels: list[Kernel], tiers=TIERS) -> list[Kernel]:
    """Set each kernel's trials by the tier its cumulative weight share falls in."""
    total = sum(k.weight_ms for k in kernels) or 1.0
    before = 0.0
    for k in kernels:
        k.trials = next(n for share, n in tiers if before / total < share or share >= 1.0)
        before += k.weight_ms
    return kernels


def trials_done(work_dir: str | Path) -> dict[str, int]:
    """Measured candidates per workload key in a work folder's database (0 when none)."""
    d = Path(work_dir)
    if not has_database(d):
        return {}
    keys = []
    with open(d / DB_FILES[0], encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                keys.append(f"{int(json.loads(line)[0]):016x}")
    done: dict[str, int] = {}
    with open(d / DB_FILES[1], encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    index = int(line[1:line.index(",")])
                except ValueError:
                    continue                 # a line cut short by a kill: not a finished trial
                done[keys[index]] = done.get(keys[index], 0) + 1
    return done


@dataclass
class SpaceTuneReport:
    work_dir: str
    database: str
    kernels: int
    covered: int                   # kernels with at least one record
    trials: int                    # candidates measured in this run
    trials_total: int
    wall_s: float                  # this run
    wall_total_s: float            # every run so far
    finished: bool                 # every kernel reached its allocation
    stopped: str = ""              # why it stopped early ("deadline", "interrupted")
    snapshots: dict = field(default_factory=dict)
    transfer: dict = field(default_factory=dict)   # sources, kept per source, wall_s


def _check_folders(work: Path, out: Path) -> None:
    """Tuning writes only into a new or empty folder, or one that already holds a tuning
    database (published, or a work folder); a user's other folders are refused."""
    from hwnas._outputs import check_output_dir

    check_output_dir(out, "tuning")
    if work.exists() and not work.is_dir():
        raise OutputError(f"tuning work folder {work} is a file, not a folder")
    if work.is_dir() and any(work.iterdir()) and not (work / MANIFEST).exists() \
            and not has_database(work):
        raise OutputError(f"tuning work folder {work} exists and holds no tuning run; choose "
                          "another folder")


def seed_work_dir(work: Path, published: Path | None) -> dict:
    """Start a fresh work folder from the published database (a clone resumes from it): its
    own records (not those of the configuration folders inside it). Returns what the published
    manifest says was spent on them (``trials`` per kernel, ``wall_s``, ``snapshots``), so that
    the run goes on with the plan where the published one stopped; {} when nothing was seeded."""
    if published is None or has_database(work):
        return {}
    src = published if has_database(published) else unpacked(published, union=False)
    work.mkdir(parents=True, exist_ok=True)
    for f in DB_FILES:
        shutil.copy2(src / f, work / f)
    man = read_manifest(published)
    trials = man.get("trials") if isinstance(man.get("trials"), dict) else {}
    return {"trials": {str(k): int(v) for k, v in trials.items()
                       if isinstance(v, int) and not isinstance(v, bool) and v > 0},
            "wall_s": float(man.get("wall_s") or 0.0),
            "snapshots": man.get("snapshots") if isinstance(man.get("snapshots"), dict) else {}}


def trials_spent(work_dir: str | Path, man: dict) -> dict[str, int]:
    """Trials per kernel of a work folder: its records, plus those a published database it was
    seeded from had spent (whose best record alone was seeded)."""
    done = trials_done(work_dir)
    for key, n in (man.get("seeded_trials") or {}).items():
        done[key] = done.get(key, 0) + n - 1
    return done


def tune_space(space, target, work_dir: str | Path, publish_dir: str | Path, *,
               op_cost_ms: dict[str, float] | None = None, minutes: float | None = None,
               resume: bool = False, tiers=TIERS, cost_model: str = "auto", seed: int = 0,
               snapshot_minutes=(), on_progress: Callable[[dict], None] | None = None,
               transfer: str = "auto") -> SpaceTuneReport:
    """Tune every kernel of ``space`` for ``target`` into ``work_dir`` and publish the best
    records to ``publish_dir`` (see the module docstring). ``on_progress`` receives a dict
    (phase, done, total, trials, elapsed and ETA in seconds) after each step.

    ``transfer="auto"``: a run that starts with no database of this CPU (none published, none
    in the work folder) first measures the other CPU models' records of every kernel here
    (``hwnas.compiler.transfer``), then spends ``minutes`` on the kernels that carry the most
    of the transferred code's time (``TRANSFER_TIERS``, unless ``tiers`` is given). ``"none"``
    tunes from scratch."""
    from hwnas.compiler.transfer import foreign_databases, transfer_records
    from hwnas.compiler.tune import TuningSession, read_work_manifest

    work, out = Path(work_dir), Path(publish_dir)
    check_seed(seed, ExportError)
    if minutes is not None:
        check_number(minutes, "tuning minutes", 0, above=True, error=ExportError)
    for m in snapshot_minutes:
        check_number(m, "snapshot minutes", 0, above=True, error=ExportError)
    _check_folders(work, out)
    if not space.kernels_follow_operators:
        raise ExportError(f"space '{space.name}' fuses kernels across its operators (a cell's "
                          f"edges are summed), so its kernels cannot be enumerated per "
                          f"operator; tune its subnets one by one instead")
    if has_database(work) and not resume:
        raise ExportError(f"{work} already holds a tuning run; resume it, or choose another "
                          "work folder")
    if resume and not ((work / MANIFEST).is_file() or has_database(work)):
        state = "holds no tuning run" if work.is_dir() else "does not exist"
        raise ExportError(f"nothing to resume: the tuning work folder {work} {state} (a new "
                          f"run starts from the published database by itself)")
    if transfer not in ("auto", "none"):
        raise ExportError(f"transfer must be 'auto' or 'none', got {transfer!r}")
    fresh = not has_database(work) and not (out / MANIFEST).exists()
    if not resume and (out / MANIFEST).exists() and read_manifest(out).get("format"):
        log.info("starting from the published database in %s", out)
    seeded = {}
    if resume or not has_database(work):
        seeded = seed_work_dir(work, out if (out / MANIFEST).exists() else None)
    repair_work_dir(work)
    work.mkdir(parents=True, exist_ok=True)
    man = read_work_manifest(work, target, "structural")
    if seeded:                 # the run goes on where the published database stopped
        man.update({"seeded_trials": seeded["trials"], "wall_s": seeded["wall_s"],
                    "snapshots": seeded["snapshots"]})
    transferring = transfer == "auto" and (fresh or "transfer" in man) \
        and not man.get("transfer_done")
    deadline = None if minutes is None else time.monotonic() + 60.0 * minutes
    t0 = time.monotonic()
    emit = on_progress or (lambda info: None)

    kernels, tasks = enumerate_kernels(
        space, target, op_cost_ms, seed=seed,
        progress=lambda i, n: emit({"phase": "kernels", "done": i, "total": n,
                                    "elapsed_s": time.monotonic() - t0}))
    allocate(kernels, tiers)
    done = trials_spent(work, man)
    man.update({"space": space.config(), "tiers": [list(t) for t in tiers],
                "plan": {k.key: k.trials for k in kernels}})
    atomic_write_json(work / MANIFEST, man)
    want = sum(k.trials for k in kernels)
    have = lambda: sum(min(done.get(k.key, 0), k.trials) for k in kernels)  # noqa: E731
    log.info("%d kernels in %d operators; %d of %d trials done", len(kernels),
             len(space.op_list), have(), want)
    prior_s = float(man.get("wall_s", 0.0))
    state = {"trials": 0, "spent_s": 0.0, "stopped": "", "snap": {}}
    marks = sorted(float(m) for m in snapshot_minutes)

    def snapshot() -> None:
        total_min = (prior_s + time.monotonic() - t0) / 60
        while marks and total_min >= marks[0]:
            m = marks.pop(0)
            dest = work / "snapshots" / f"{m:g}"
            dest.mkdir(parents=True, exist_ok=True)
            for f in DB_FILES:
                shutil.copy2(work / f, dest / f)
            state["snap"][f"{m:g}"] = {"minutes": round(total_min, 2), "trials": have()}
            log.info("snapshot of the database at %.1f min: %s", total_min, dest)

    def run_chunks(todo: list[Kernel], per_task: int, chunk: int, session) -> bool:
        i = 0
        while i < len(todo):
            if interrupt.requested:
                state["stopped"] = "interrupted"
                return False
            part = todo[i:i + chunk]
            if deadline is not None:
                rate = state["spent_s"] / state["trials"] if state["trials"] else 0.6
                left = deadline - time.monotonic()
                fit = int(left / max(rate * per_task, 1e-3))
                if fit < 1:
                    state["stopped"] = "deadline"
                    return False
                part = part[:fit]
            t1 = time.monotonic()
            session.run([tasks[k.key] for k in part], per_task, seed + i)
            state["spent_s"] += time.monotonic() - t1
            state["trials"] += per_task * len(part)
            for k in part:
                done[k.key] = done.get(k.key, 0) + per_task
            i += len(part)
            man["wall_s"] = prior_s + time.monotonic() - t0
            atomic_write_json(work / MANIFEST, man)
            rate = state["spent_s"] / state["trials"]
            emit({"phase": "tuning", "done": have(), "total": want, "trials": state["trials"],
                  "elapsed_s": time.monotonic() - t0, "eta_s": rate * (want - have())})
            snapshot()
        return True

    finished = False
    interrupt = _Interrupt()
    try:
        with interrupt, TuningSession(target, work, cost_model=cost_model) as session:
            sources, skipped = foreign_databases(target) if transferring else ([], {})
            if sources:
                t1 = time.monotonic()
                picks = transfer_records(kernels, tasks, sources, session, work, man,
                                         stop=lambda: interrupt.requested, emit=emit)
                man["transfer_wall_s"] = round(man.get("transfer_wall_s", 0.0)
                                               + time.monotonic() - t1, 1)
                if interrupt.requested:            # resumed by --resume; nothing published
                    state["stopped"] = "interrupted"
                    tiers = ()
                man["transfer_done"] = not interrupt.requested
                man["transfer_sources"] = {s.cpu: f"{s.path.parent.name}/{s.path.name}"
                                           for s in sources}
                man["transfer_skipped"] = skipped
            if man.get("transfer_done") and man.get("transfer"):
                picks = man["transfer"]
                for k in kernels:
                    secs = picks.get(k.key, {}).get("seconds", {}).values()
                    best = min((v for v in secs if v is not None), default=None)
                    k.measured_ms = None if best is None else 1e3 * best
                tiers = TRANSFER_TIERS if tiers is TIERS else tiers
                kernels.sort(key=lambda k: -k.weight_ms)
                allocate(kernels, tiers)
                man.update({"tiers": [list(t) for t in tiers],
                            "plan": {k.key: k.trials for k in kernels}})
                done = trials_spent(work, man)
                want = sum(k.trials for k in kernels)
                atomic_write_json(work / MANIFEST, man)
                if minutes is not None:           # the minutes are the top-up's
                    deadline = time.monotonic() + 60.0 * minutes
            levels = sorted({n for _, n in tiers})
            ok = True
            for level in levels:
                todo = [k for k in kernels if k.trials >= level and done.get(k.key, 0) < level]
                if not todo:
                    continue
                need = level - min(done.get(k.key, 0) for k in todo)
                ok = run_chunks(todo, need, 32 if level == levels[0] else 16, session)
                if not ok:
                    break
            finished = ok and all(done.get(k.key, 0) >= k.trials for k in kernels)
    except KeyboardInterrupt:
        state["stopped"] = "interrupted"
        raise
    else:
        if state["stopped"] == "interrupted":
            raise KeyboardInterrupt        # after the records were published, below
    finally:
        man["wall_s"] = prior_s + time.monotonic() - t0
        man.setdefault("runs", []).append({
            "trials": state["trials"], "wall_s": round(time.monotonic() - t0, 1),
            "finished": finished, "stopped": state["stopped"] or None})
        atomic_write_json(work / MANIFEST, man)
        if has_database(work) and man.get("transfer_done", "transfer" not in man):
            publish(work, out, {
                "target": target_identity(target), "module_equality": "structural",
                "space": space.config(), "kernels": len(kernels),
                "trials": {k.key: done[k.key] for k in kernels if done.get(k.key)},
                "plan": {k.key: k.trials for k in kernels}, "tiers": [list(t) for t in tiers],
                "trials_total": sum(done.values()), "wall_s": round(man["wall_s"], 1),
                "finished": finished, "snapshots": {**man.get("snapshots", {}),
                                                    **state["snap"]},
                **_transfer_summary(man)})
            man["snapshots"] = {**man.get("snapshots", {}), **state["snap"]}
            atomic_write_json(work / MANIFEST, man)
    covered = sum(1 for k in kernels if done.get(k.key, 0))
    return SpaceTuneReport(str(work), str(out), len(kernels), covered, state["trials"],
                           sum(done.values()), round(time.monotonic() - t0, 1),
                           round(man["wall_s"], 1), finished, state["stopped"],
                           man.get("snapshots", {}),
                           _transfer_summary(man).get("transfer", {}))


def _transfer_summary(man: dict) -> dict:
    """What the published manifest says of a transfer: the sources, how many kernels kept
    each one's schedule (or the default), and its time."""
    picks = man.get("transfer")
    if not picks:
        return {}
    kept: dict[str, int] = {}
    for p in picks.values():
        kept[str(p.get("best"))] = kept.get(str(p.get("best")), 0) + 1
    return {"transfer": {"from": man.get("transfer_sources", {}), "kept": kept,
                         "skipped": man.get("transfer_skipped", {}),
                         "wall_s": man.get("transfer_wall_s")}}


class _Interrupt:
    """Ctrl-C (or SIGTERM) while tuning: MetaSchedule turns an interrupt inside a trial into a
    failed trial and goes on, so the first signal asks to stop after the chunk in flight (the
    records so far are then published); a second one stops at once (every measured record is
    already on disk; resuming publishes them)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def _handle(self, signum, _frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after the kernels being tuned now (interrupt again to stop at "
                    "once; measured records are kept either way)")

    def __enter__(self) -> "_Interrupt":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)


def kernel_coverage(mod, target, database) -> tuple[int, list[str]]:
    """(kernels, names of those the database has no record for) of a Relax module."""
    from hwnas.compiler.tune import extract_tuning_tasks

    tasks = extract_tuning_tasks(mod, target)
    tvm_target = target.tvm()
    missing = [t.task_name for t in tasks if database is None or database.query_tuning_record(
        t.dispatched[0], tvm_target, t.task_name) is None]
    return len(tasks), missing
