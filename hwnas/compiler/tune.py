"""MetaSchedule tuning for a ``Target``, with one resumable database per target.

Tasks are extracted after the same fusion passes (``fuse_for_tuning``) that
``compile_onnx(..., database=db)`` runs, so the database keys match the kernels that ship. The
database lives in ``work_dir`` (``database_workload.json``, ``database_tuning_record.json``)
next to ``tuning.json``, which records the trials already spent per workload: a second run with
the same budget tunes nothing, a bigger budget only tops up, and a model whose kernels were
tuned for another subnet (same shapes, same epilogue) reuses them. Profiling and deploy pass the
same ``work_dir`` so that latency tables and bundles come from one database.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass
from pathlib import Path

from hwnas._cpus import unpinned
from hwnas._io import atomic_write_json, read_json
from hwnas.compiler.database import MANIFEST, last_line, load_database, work_dir
from hwnas.errors import ExportError
from hwnas.targets import Target

__all__ = ["TuneReport", "TuningSession", "default_work_dir", "fast_build",
           "extract_tuning_tasks", "register_intrinsics", "workload_key", "read_work_manifest",
           "tune_relax_module", "tune_onnx", "last_run"]

log = logging.getLogger("hwnas.compiler.tune")

_EQUALITIES = ("structural", "anchor-block")
_ARTIFACTS_ENV = "HWNAS_MS_ARTIFACTS"  # where builder workers (spawned processes) put candidates


@dataclass(frozen=True)
class TuneReport:
    """What one ``tune_*`` call did (``trials`` counts the budget handed to MetaSchedule).

    Each call appends one to ``runs`` in ``tuning.json``; ``last_run(work_dir)`` reads it back.
    """

    work_dir: str
    tasks: int
    tuned: int
    reused: int
    trials: int
    trials_per_task: int
    wall_s: float


def default_work_dir(target: Target, root: str | os.PathLike | None = None) -> Path:
    """``<root>/tuning/<target>``; root is ``$HWNAS_CACHE`` or ``~/.cache/hwnas`` unless given."""
    return work_dir(target) if root is None else Path(root) / "tuning" / target.name


def fast_build(mod, target, _params):
    """MetaSchedule's builder without its ``tvm.s_tir.tensor_intrin`` import.

    The default build function imports the tensor intrinsics in every fresh worker, which takes
    about a minute on a small machine and times every candidate out.
    """
    from tvm.driver import build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    return build(RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod), target=target)


def export_shared(mod) -> str:
    """Link each candidate into a ``.so`` in the (parallel) builder workers.

    MetaSchedule's default exports a ``.tar`` that the runner, a single worker, must link with
    the system compiler before timing it; that serial link dominated tuning here.
    """
    path = os.path.join(tempfile.mkdtemp(dir=os.environ.get(_ARTIFACTS_ENV)), "candidate.so")
    mod.export_library(path)
    return path


def _build_one(args):
    from hwnas.compiler._metaschedule import builder_parts

    return builder_parts()[3](*args)


def _pooled_builder(max_workers: int, timeout_s: float, uses: int = 64):
    """A MetaSchedule builder whose worker processes outlive one batch.

    ``LocalBuilder`` starts fresh workers for every batch; each imports tvm, which costs several
    seconds here, more than building the batch when a task gets a handful of trials. Workers
    are recycled after ``uses`` builds (the reason ``LocalBuilder`` restarts them is a leak).
    """
    from hwnas.compiler._metaschedule import builder_parts
    from tvm.ir.utils import derived_object
    from tvm.support.popen_pool import PopenPoolExecutor, StatusKind

    BuilderResult, PyBuilder, _serialize_params, _ = builder_parts()

    @derived_object
    class PooledBuilder(PyBuilder):
        def __init__(self) -> None:
            super().__init__()
            self.pool = PopenPoolExecutor(max_workers=max_workers, timeout=timeout_s,
                                          maximum_process_uses=uses)

        def build(self, build_inputs):
            args = [(fast_build, export_shared, b.mod, b.target, _serialize_params(b.params))
                    for b in build_inputs]
            results = []
            for res in self.pool.map_with_error_catching(_build_one, args):
                if res.status == StatusKind.COMPLETE:
                    results.append(BuilderResult(res.value, None))
                elif res.status == StatusKind.TIMEOUT:
                    results.append(BuilderResult(None, f"build timed out after {timeout_s} s"))
                else:
                    results.append(BuilderResult(None, f"build failed: {res.value}"))
            return results

    return PooledBuilder()


def _prepare(mod, tvm_target):
    """Legalize and fuse exactly as the tuned compile pipeline does."""
    from hwnas.compiler.pipelines import fuse_for_tuning

    with tvm_target:
        return fuse_for_tuning()(mod)


def extract_tuning_tasks(mod, target: Target, module_equality: str = "structural") -> list:
    """The fused TIR kernels of a Relax module, as MetaSchedule ``ExtractedTask``s."""
    from hwnas.compiler._metaschedule import meta_schedule
    ms = meta_schedule()
    tvm_target = target.tvm()
    return list(ms.relax_integration.extract_tasks(_prepare(mod, tvm_target), tvm_target,
                                                   module_equality=module_equality))


def read_work_manifest(work_dir: Path, target: Target, module_equality: str) -> dict:
    """A work folder's ``tuning.json`` (a fresh one when absent), checked against ``target``."""
    path = work_dir / MANIFEST
    if not path.exists():
        return {"target": str(target.tvm()), "module_equality": module_equality, "trials": {}}
    man = read_json(path, "tuning manifest", ExportError)
    if not isinstance(man, dict):
        raise ExportError(f"corrupt tuning manifest {path}: not a JSON object")
    if man.get("target") != str(target.tvm()):
        raise ExportError(f"{path}: tuned for target {man.get('target')!r}, not "
                          f"{str(target.tvm())!r}; use another work_dir")
    if man.get("module_equality") != module_equality:
        raise ExportError(f"{path}: database uses module_equality "
                          f"'{man.get('module_equality')}', not '{module_equality}'")
    return man


def workload_key(task) -> str:
    """The structural hash MetaSchedule files a kernel under (hex, 64 bit)."""
    from tvm_ffi import structural_hash

    return f"{structural_hash(task.dispatched[0]) & (2**64 - 1):016x}"


def _heaviest_first(tasks: list) -> list:
    """Order tasks by FLOPs times occurrences, so that a cut-short run has tuned what matters."""
    from tvm.s_tir.analysis import estimate_tir_flops

    return sorted(tasks, key=lambda t: -estimate_tir_flops(t.dispatched[0]) * t.weight)


def _cost_model(name: str) -> str:
    if name != "auto":
        return name
    try:
        import xgboost  # noqa: F401
    except ImportError:
        return "random"
    return "xgb"


_INTRINSICS = {"x86": "x86", "aarch64": "arm_cpu", "arm": "arm_cpu", "cuda": "cuda",
               "rocm": "rocm", "riscv": "riscv_cpu"}


def register_intrinsics(tvm_target) -> None:
    """Register the tensor intrinsics that the target's schedule rules may ask for.

    ``TuneContext`` otherwise imports all of ``tvm.s_tir.tensor_intrin``: hundreds of TVMScript
    intrinsics, each parsed with ``inspect.stack()``, one to several minutes here (13 min in
    pytest with torch loaded). Only the family of the target's ISA is loaded (the x86 VNNI and
    AVX-512 dot products that MetaSchedule's x86 rules request on an AVX-512 VNNI CPU, say),
    under a stand-in for the package, in a fraction of a second.
    """
    import importlib

    import tvm.s_tir as s_tir

    kind = tvm_target.kind.name
    triple = str(tvm_target.attrs.get("mtriple", "") or "")
    family = _INTRINSICS.get(kind) or next(
        (v for k, v in _INTRINSICS.items() if triple.startswith(k)), "x86")
    name = "tvm.s_tir.tensor_intrin"
    if name not in sys.modules:
        stub = types.ModuleType(name)
        stub.__path__ = [os.path.join(os.path.dirname(s_tir.__file__), "tensor_intrin")]
        sys.modules[name] = stub
    importlib.import_module(f"{name}.{family}")


def _contexts(tasks, tvm_target, seed: int, population: int, database=None) -> list:
    """One TuneContext per task, logging to ``hwnas.compiler.tune.ms`` instead of per-task files.

    With a ``database``, each task tunes the module the database already files its workload
    under: the database matches kernels by structure, ignoring names, but a schedule trace
    names its blocks, so a trace recorded on a same-structure kernel whose blocks are named
    otherwise (``input_red`` against ``lv13_red``) could never be replayed.
    """
    from hwnas.compiler._metaschedule import meta_schedule
    ms = meta_schedule()
    strategy = ms.search_strategy.EvolutionarySearch(population_size=population,
                                                     init_min_unmeasured=min(50, population))
    ms_log = logging.getLogger("hwnas.compiler.tune.ms")
    # MetaSchedule logs every trial and dumps IR at INFO: show it only with --verbose
    ms_log.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
    register_intrinsics(tvm_target)
    mods = [t.dispatched[0] if database is None else database.commit_workload(t.dispatched[0]).mod
            for t in tasks]
    return [ms.TuneContext(mod=mod, target=tvm_target,
                           space_generator="post-order-apply", search_strategy=strategy,
                           task_name=t.task_name, logger=ms_log, rand_state=seed + i,
                           num_threads="physical").clone()
            for i, (t, mod) in enumerate(zip(tasks, mods))]


class TuningSession:
    """One builder pool, runner, cost model and database for many ``run`` calls.

    Keeping them between calls saves the workers' start-up (seconds each) and lets the cost
    model learn from every kernel tuned so far, not only the current chunk's.
    """

    def __init__(self, target: Target, work_dir: Path, *, cost_model: str = "auto",
                 module_equality: str = "structural", build_timeout_s: float = 60.0,
                 runner_min_repeat_ms: int = 40) -> None:
        from hwnas.compiler._metaschedule import meta_schedule
        ms = meta_schedule()
        self.target, self.tvm_target = target, target.tvm()
        self.work_dir, self.module_equality = Path(work_dir), module_equality
        self._artifacts = tempfile.mkdtemp(prefix="hwnas-ms-")
        os.environ[_ARTIFACTS_ENV] = self._artifacts   # read by the spawned builder workers
        self.builder = _pooled_builder(max(1, os.cpu_count() or 1), build_timeout_s)
        self.runner = ms.runner.LocalRunner(evaluator_config=ms.runner.EvaluatorConfig(
            number=3, repeat=1, min_repeat_ms=runner_min_repeat_ms))
        name = _cost_model(cost_model)
        self.cost_model = (ms.cost_model.XGBModel(adaptive_training=True) if name == "xgb"
                           else ms.cost_model.CostModel.create(name))
        self.database = ms.database.JSONDatabase(work_dir=str(self.work_dir),
                                                 module_equality=module_equality)

    def run(self, tasks: list, per_task: int, seed: int = 0) -> None:
        """Give each of ``tasks`` ``per_task`` more trials; records are committed as measured."""
        from hwnas.compiler._metaschedule import meta_schedule
        ms = meta_schedule()
        try:
            # A TVM runtime in this process pins the calling thread to one core; the builder
            # and runner processes would inherit that and build, and time, on one core.
            with unpinned():
                ms.tune.tune_tasks(
                    tasks=_contexts(tasks, self.tvm_target, seed, max(64, 4 * per_task),
                                    self.database),
                    task_weights=[float(t.weight) for t in tasks], work_dir=str(self.work_dir),
                    max_trials_global=per_task * len(tasks), max_trials_per_task=per_task,
                    num_trials_per_iter=min(per_task, 64), builder=self.builder,
                    runner=self.runner, database=self.database, cost_model=self.cost_model,
                    module_equality=self.module_equality)
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"MetaSchedule tuning for '{self.target.name}' failed: "
                              f"{last_line(exc)}") from None

    def close(self) -> None:
        for part in (self.builder, self.runner):
            part.pool.shutdown(wait=False)
        if os.environ.get(_ARTIFACTS_ENV) == self._artifacts:
            os.environ.pop(_ARTIFACTS_ENV, None)
        shutil.rmtree(self._artifacts, ignore_errors=True)

    def __enter__(self) -> "TuningSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tune_relax_module(mod, target: Target, work_dir: str | os.PathLike | None = None,
                      trials: int = 1000, *, trials_per_task: int | None = None,
                      cost_model: str = "auto", module_equality: str = "structural",
                      seed: int = 0, build_timeout_s: float = 60.0,
                      runner_min_repeat_ms: int = 40, chunk: int = 16):
    """Tune every fused kernel of ``mod`` for ``target``; resumable, database in ``work_dir``.

    ``trials`` is the budget for the whole model, split evenly over its kernels (at least one
    trial each) unless ``trials_per_task`` is given. Kernels that already received that many
    trials (by this model or by another one sharing the kernel) are skipped. The heaviest
    kernels go first, ``chunk`` kernels per MetaSchedule session, and progress is saved after
    each session. Returns the database; what the run did is logged and appended to ``runs`` in
    ``tuning.json``.
    """
    if module_equality not in _EQUALITIES:
        raise ExportError(f"module_equality must be one of {list(_EQUALITIES)}, "
                          f"got '{module_equality}'")
    work_dir = Path(work_dir) if work_dir is not None else default_work_dir(target)
    work_dir.mkdir(parents=True, exist_ok=True)
    man = read_work_manifest(work_dir, target, module_equality)
    t0 = time.perf_counter()
    tasks = extract_tuning_tasks(mod, target, module_equality)
    if not tasks:
        raise ExportError("the model has no kernels to tune")
    per_task = trials_per_task or max(1, math.ceil(trials / len(tasks)))
    pending = _heaviest_first([t for t in tasks
                               if man["trials"].get(workload_key(t), 0) < per_task])
    log.info("tuning %d of %d kernels, %d trials each, in %s", len(pending), len(tasks),
             per_task, work_dir)
    with TuningSession(target, work_dir, cost_model=cost_model, module_equality=module_equality,
                       build_timeout_s=build_timeout_s,
                       runner_min_repeat_ms=runner_min_repeat_ms) as session:
        for start in range(0, len(pending), chunk):
            part = pending[start:start + chunk]
            session.run(part, per_task, seed + start)
            # the manifest is saved per chunk: an interrupted run resumes after the last chunk
            man["trials"].update({workload_key(t): per_task for t in part})
            atomic_write_json(work_dir / MANIFEST, man)
            log.info("tuned %d/%d kernels", start + len(part), len(pending))
    report = TuneReport(str(work_dir), len(tasks), len(pending), len(tasks) - len(pending),
                        per_task * len(pending), per_task, round(time.perf_counter() - t0, 2))
    man.setdefault("runs", []).append({k: v for k, v in asdict(report).items() if k != "work_dir"})
    atomic_write_json(work_dir / MANIFEST, man)
    log.info("tuned %d kernels (%d reused) in %.1f s", report.tuned, report.reused, report.wall_s)
    database = load_database(work_dir)
    if database is None:
        raise ExportError(f"tuning wrote no records to {work_dir}: every candidate failed to "
                          f"build or run")
    return database


def tune_onnx(onnx_path: str | os.PathLike, input_shapes: dict[str, tuple[int, ...]],
              target: Target, work_dir: str | os.PathLike | None = None, trials: int = 1000,
              **kwargs):
    """Import an ONNX model as ``compile_onnx`` does and tune it (see ``tune_relax_module``)."""
    from hwnas.compiler import onnx_to_relax

    return tune_relax_module(onnx_to_relax(onnx_path, input_shapes), target, work_dir, trials,
                             **kwargs)


def last_run(work_dir: str | os.PathLike) -> TuneReport:
    """The report of the latest ``tune_*`` call on ``work_dir``."""
    man = read_json(Path(work_dir) / MANIFEST, "tuning manifest", ExportError)
    if not man.get("runs"):
        raise ExportError(f"{Path(work_dir) / MANIFEST}: no tuning run recorded")
    return TuneReport(work_dir=str(work_dir), **man["runs"][-1])
