"""Range checks for the numbers a user gives, each a one-line error that names the field.

Every typed config and loader checks its own fields with these, so that Python callers and the
CLI get the same error; messages name the field, never a command-line flag.
"""
from __future__ import annotations

import math
import numbers

from hwnas.errors import HwnasError

__all__ = ["check_int", "check_number", "check_seed"]


def check_int(value, name: str, minimum: int = 0, maximum: int | None = None,
              error: type[HwnasError] = HwnasError) -> int:
    """An integer (not a bool, not a fraction) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise error(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        where = f"≥ {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise error(f"{name} must be an integer {where}, got {value!r}")
    return int(value)


def check_number(value, name: str, minimum: float | None = None, maximum: float | None = None,
                 *, above: bool = False, error: type[HwnasError] = HwnasError) -> float:
    """A finite number (NaN and inf refused) ≥ ``minimum`` (> it with ``above``) and ≤
    ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise error(f"{name} must be a finite number, got {value!r}")
    low = minimum is not None and (value <= minimum if above else value < minimum)
    if low or (maximum is not None and value > maximum):
        lo = "" if minimum is None else f"{'>' if above else '≥'} {minimum:g}"
        hi = "" if maximum is None else f"≤ {maximum:g}"
        raise error(f"{name} must be {' and '.join(p for p in (lo, hi) if p)}, got {value!r}")
    return float(value)


def check_seed(value, error: type[HwnasError] = HwnasError) -> int:
    """A random seed: an integer in [0, 2**63)."""
    return check_int(value, "seed", 0, 2 ** 63 - 1, error)
