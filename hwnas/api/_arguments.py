"""The front door's shared argument checks: budgets, numbers and target names from Python, and
the output folder and tuning database every journey resolves the same way."""
from __future__ import annotations

import math
import os

from hwnas.errors import BudgetError, HwnasError


def _budget_ms(value, what: str = "latency budget") -> float:
    if isinstance(value, bool):             # True is not 1 ms
        raise BudgetError(f"{what} must be a number of milliseconds, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BudgetError(f"{what} must be a number of milliseconds, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise BudgetError(f"{what} must be a positive, finite number of ms, got {value!r}")
    return v


def _check_target_name(target, optional: bool = False) -> None:
    """A target is a name or a ``.toml`` path (or a loaded ``Target``), never another type."""
    from hwnas.errors import TargetError
    from hwnas.targets import Target

    if (target is None and optional) or isinstance(target, (str, os.PathLike, Target)):
        return
    raise TargetError(f"a target is a name (see list_targets()) or a .toml path, got "
                      f"{type(target).__name__} {target!r}")


def _arch_of(arch) -> tuple[dict | None, str]:
    """``(arch.json dict or None, arch string)`` of an arch given as its string or as an
    ``arch.json`` dict."""
    arch_json = arch if isinstance(arch, dict) else None
    text = arch_json.get("arch") if arch_json else arch
    if not isinstance(text, str):
        from hwnas.errors import ArchError

        raise ArchError("an arch is its string, or an arch.json object with an 'arch' string")
    return arch_json, text


def _check_numbers(error: type[HwnasError] = HwnasError, **values) -> None:
    """Numbers given from Python: a bool is no number, and NaN or inf no count or fraction
    (None: the default). Ranges are checked where each value is used."""
    import numbers

    for name, v in values.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)
                              or not math.isfinite(v)):
            raise error(f"{name} must be a finite number, got {v!r}")


def _claim(out, kind: str, force: bool):
    """The lock of the output folder ``out`` once it passed its checks (None: no output)."""
    import contextlib

    from hwnas._outputs import check_output_dir, claim_output

    if out is None:
        return contextlib.nullcontext()
    return claim_output(check_output_dir(out, kind, force))


def _database_dir(target, choice) -> str | None:
    from hwnas.compiler.database import resolve_database

    found = resolve_database(target, choice)
    return None if found is None else str(found)
