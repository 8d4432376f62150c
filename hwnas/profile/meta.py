"""Table metadata: what was measured, where, with what, and how far it got."""
from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

from hwnas.errors import TableError
from hwnas.profile.table import LatencyTable

__all__ = ["new_meta", "check_resume", "check_emulation", "add_space", "update_coverage",
           "now_iso", "tuning_identity"]

log = logging.getLogger("hwnas.profile")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _versions() -> dict:
    from hwnas._versions import versions

    return versions()


def tuning_identity(tuning_dir: str | None, space=None) -> dict:
    """What a table records of the database its code was compiled with (digest of ``space``'s
    configuration's part, provenance); the folder itself is recorded relative to nothing, as
    it differs between checkouts."""
    from hwnas.compiler.database import describe_database

    info = describe_database(tuning_dir, space)
    info["database"] = None if tuning_dir is None else Path(tuning_dir).name
    return info


def new_meta(target, space, runtime, protocol, tuning_dir: str | None, batch: int) -> dict:
    return {
        "target": target.name, "space": space.name, "runtime": runtime.family,
        "device": runtime.describe(), "address": runtime.address,
        "target_config": target.to_json(), "versions": _versions(),
        "compiler": {"path": "torch → ONNX → TVM Relax (hwnas.compiler.pipelines)",
                     "pipeline": target.pipeline, "tuned": tuning_dir is not None,
                     "tuning": tuning_identity(tuning_dir, space),
                     "ops_per_module": batch},
        "protocol": protocol.to_json(), "measured_here": True,
        # what the device reported: an emulator's timings are not the device's (predict refuses)
        "emulated": getattr(runtime, "emulator", None) is not None,
        "emulator": getattr(runtime, "emulator", None),
        "created": now_iso(), "updated": now_iso(), "spaces": [], "coverage": {},
        "networks": [], "validation": {"n": 0, "within10": None, "mape": None},
    }


def check_resume(table: LatencyTable, path, target, space, runtime_name: str, protocol,
                 tuning_dir: str | None) -> None:
    """Refuse to mix measurements taken differently into one table."""
    m = table.meta
    if not m.get("measured_here", False):
        raise TableError(f"{path} holds an imported table; profile into another table file")
    wrong = [(k, m.get(k), v) for k, v in (("target", target.name), ("space", space.name),
                                             ("runtime", runtime_name)) if m.get(k) != v]
    if wrong:
        k, have, want = wrong[0]
        raise TableError(f"cannot resume {path}: it was measured with {k} '{have}', not '{want}'")
    if "protocol" in m and not protocol.same_as(m["protocol"]):
        raise TableError(f"cannot resume {path}: it was measured with another protocol "
                         f"({m['protocol']})")
    have = m.get("compiler", {})
    if bool(have.get("tuned")) != (tuning_dir is not None):
        raise TableError(f"cannot resume {path}: it was compiled "
                         f"{'with' if have.get('tuned') else 'without'} a tuning database, and "
                         f"this run compiles {'with' if tuning_dir else 'without'} one")
    digest = have.get("tuning", {}).get("digest")
    if tuning_dir is not None and digest and digest != tuning_identity(tuning_dir, space)["digest"]:
        raise TableError(f"cannot resume {path}: it was compiled with another version of the "
                         f"tuning database (digest {digest}); profile into a new table")
    old = m.get("versions", {})
    new = _versions()
    for k in ("tvm", "torch", "onnxruntime"):
        if old.get(k) != new.get(k):
            log.warning("resuming a table measured with %s %s; now %s", k, old.get(k), new.get(k))


def check_emulation(table: LatencyTable, path, emulator: str | None) -> None:
    """Refuse to resume a table of a real device on an emulated one, or the other way round."""
    was = bool(table.meta.get("emulated"))
    if was != (emulator is not None):
        now = f"this one is emulated ({emulator})" if emulator else "this one is not"
        raise TableError(f"cannot resume {path}: it was measured on "
                         f"{'an emulated' if was else 'a real'} device, and {now}")


def add_space(meta: dict, space) -> None:
    """Record ``space.config()``; configs that differ only in resolutions are merged."""
    cfg = space.config()
    for i, have in enumerate(meta.setdefault("spaces", [])):
        if {k: v for k, v in have.items() if k != "resolutions"} == \
                {k: v for k, v in cfg.items() if k != "resolutions"}:
            if "resolutions" in have or "resolutions" in cfg:   # a space without resolutions has none
                res = set(have.get("resolutions", [])) | set(cfg.get("resolutions", []))
                meta["spaces"][i] = {**have, "resolutions": sorted(res)}
            return
    meta["spaces"].append(cfg)


def update_coverage(table: LatencyTable) -> dict:
    """How many of each recorded config's operators the table holds."""
    from hwnas.spaces import space_from_config

    per, all_keys = [], set()
    for cfg in table.meta.get("spaces", []):
        keys = {op.key for op in space_from_config(cfg).op_list}
        all_keys |= keys
        per.append({"config": cfg, "n_ops": len(keys),
                    "n_measured": sum(k in table.entries for k in keys)})
    cov = {"n_ops": len(all_keys), "n_measured": sum(k in table.entries for k in all_keys),
           "per_space": per}
    cov["complete"] = cov["n_ops"] == cov["n_measured"]
    table.meta["coverage"] = cov
    table.meta["updated"] = now_iso()
    return cov
