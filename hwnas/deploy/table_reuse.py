"""Step 1 of deploy: reuse the target's latency table when it fits, else profile it."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.errors import TableError
from hwnas.profile.table import LatencyTable, table_path

__all__ = ["TableRecord", "ensure_table"]

log = logging.getLogger("hwnas.deploy")
VERSION_KEYS = ("tvm", "torch", "onnxruntime")


@dataclass(frozen=True)
class TableRecord:
    """The operator table a deploy predicts with (loaded once) and what its manifest says of
    it. A few-shot predictor has none (``table`` None): ``fewshot`` names its file instead.
    ``other_cpu``: the CPU model the table was measured on, when that is not the target's."""

    path: Path | None
    reused: bool
    table: LatencyTable | None = field(default=None, repr=False, compare=False)
    fewshot: Path | None = None
    device: str | None = None
    emulated: bool = False
    emulator: str | None = None
    other_cpu: str | None = None
    profiled_ops: int | None = None
    profiled_networks: int | None = None

    @classmethod
    def of(cls, path: Path, table: LatencyTable, target, reused: bool,
           **profiled: int) -> "TableRecord":
        return cls(path, reused, table, device=table.meta.get("device"),
                   emulated=bool(table.meta.get("emulated")), emulator=table.meta.get("emulator"),
                   other_cpu=table.other_cpu(target), **profiled)

    def to_json(self) -> dict:
        if self.table is None:
            return {"path": None, "fewshot": str(self.fewshot), "reused": self.reused,
                    "device": self.device}
        out = {"path": str(self.path), "reused": self.reused, "device": self.device,
               "emulated": self.emulated, "emulator": self.emulator, "other_cpu": self.other_cpu}
        if self.profiled_ops is not None:
            out.update(profiled_ops=self.profiled_ops, profiled_networks=self.profiled_networks)
        return out


def _reusable(table: LatencyTable, space, tuning_dir: str | None, target=None,
              emulator: str | None = None) -> str | None:
    """None when the table can be used as it is, else why not."""
    from hwnas._versions import versions

    if table.meta.get("emulated") and emulator is None:
        return (f"it was measured on an emulated device ({table.meta.get('emulator')}), and "
                "this one is not")
    other = table.other_cpu(target) if target is not None else None
    if other:
        log.warning("the %s table was measured on CPU %s, this is %s: using it, scaled to "
                    "this CPU by its reference network", table.target, other, target.mcpu)
    now = versions()
    for k in VERSION_KEYS:
        if table.meta.get("versions", {}).get(k) != now[k]:
            return f"it was measured with {k} {table.meta.get('versions', {}).get(k)}, now {now[k]}"
    compiler = table.meta.get("compiler", {})
    if bool(compiler.get("tuned")) != (tuning_dir is not None):
        return ("it describes untuned code and the target now has a tuning database"
                if tuning_dir else "it describes tuned code and no tuning database is used")
    digest = compiler.get("tuning", {}).get("digest")
    if tuning_dir is not None and digest:
        from hwnas.compiler.database import database_digest

        if digest != database_digest(tuning_dir, space):
            log.warning("the %s table was measured with another version of its tuning "
                        "database; using it (the first round re-times a table network)",
                        table.target)
    missing = table.missing(space.op_list)
    if missing:
        return f"it lacks {len(missing)} operators of this space, e.g. {missing[0].key}"
    if table.config_index(space) is None:
        return "it does not record this space configuration"
    return None


def ensure_table(target, space, runtime, tuning_dir: str | None, networks: int,
                 path=None) -> TableRecord:
    """Make sure ``latency_tables/<target>/<space>.json`` (or ``path``) covers ``space``, and
    return it, loaded, with what was done."""
    from hwnas.profile.profiler import ProfileOptions, profile

    path = Path(path) if path is not None else table_path(target.name, space)
    why = "no table yet"
    emulator = getattr(runtime, "emulator", None)
    if path.exists():
        table = LatencyTable.load(path)
        if emulator and not table.meta.get("emulated"):
            raise TableError(f"{path} was measured on a real device; an emulated device "
                             f"({emulator}) neither replaces nor extends it: keep its tables in "
                             "a tables folder of their own (HWNAS_TABLES)")
        why = _reusable(table, space, tuning_dir, target, emulator)
        if why is None:
            log.info("reusing %s (%d entries, measured on %s)", path, len(table),
                     table.meta.get("device", "?"))
            return TableRecord.of(path, table, target, reused=True)
        if not table.meta.get("measured_here", False):
            raise TableError(f"{path} is an imported table that cannot serve this space: {why}")
    if runtime is None:
        raise TableError(f"latency table {path} must be (re)profiled ({why}) but no device "
                         f"runtime was given")
    log.info("profiling %s on %s: %s", target.name, runtime.address, why)
    stale = path.exists() and why.startswith(("it was", "it describes"))
    if stale:
        backup = path.with_suffix(".json.stale")
        path.replace(backup)
        log.info("moved the stale table to %s", backup)
    report = profile(space, target, runtime, path,
                     ProfileOptions(resume=path.exists(), networks=networks,
                                    tuning_dir=tuning_dir))
    return TableRecord.of(path, LatencyTable.load(path), target, reused=False,
                          profiled_ops=report.n_new, profiled_networks=report.n_networks_new)
