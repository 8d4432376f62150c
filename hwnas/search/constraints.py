"""Hard constraints of a search: latency budgets on one or more targets, params, MACs, memory.

A latency spec is ``"25"`` (the ``--target``) or ``"x86-host=25,note10=40"`` (several targets
at once; one arch must meet every budget). The safety margin is either the predictor's upper
quantile (default: ``predict_upper_genomes(G, quantile)`` must fit the budget) or a fixed
fraction (``margin=0.1``: ``1.1 × predicted`` must fit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from hwnas.errors import BudgetError

__all__ = ["LatencyBudget", "Constraints", "parse_latency_spec"]


@dataclass(frozen=True)
class LatencyBudget:
    target: str
    budget_ms: float

    def __str__(self) -> str:
        return f"{self.target}={self.budget_ms:g}"


@dataclass(frozen=True)
class Constraints:
    """Every field is an upper bound; ``None`` means unconstrained.

    ``max_mflops`` counts multiply-adds in millions (the MobileNet/OFA convention), and
    ``max_act_kb`` the peak float32 activation memory of one operator in KiB.
    """

    latency: tuple[LatencyBudget, ...] = ()
    max_params: float | None = None
    max_mflops: float | None = None
    max_act_kb: float | None = None
    margin: float | None = None
    quantile: float = 0.9
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        from hwnas._checks import check_number

        for name in ("max_params", "max_mflops", "max_act_kb"):
            v = getattr(self, name)
            if v is not None:
                check_number(v, name, 0, above=True, error=BudgetError)
        if self.margin is not None:
            check_number(self.margin, "margin", error=BudgetError)
            if not 0 <= self.margin < 10:
                raise BudgetError(f"margin must be a fraction in [0, 10), got {self.margin}")
        check_number(self.quantile, "quantile", error=BudgetError)
        if not 0.5 <= self.quantile < 1:
            raise BudgetError(f"quantile must be in [0.5, 1), got {self.quantile}")
        targets = [b.target for b in self.latency]
        if len(set(targets)) != len(targets):
            raise BudgetError(f"a target appears twice in the latency budget: {targets}")

    @property
    def targets(self) -> list[str]:
        return [b.target for b in self.latency]

    def budget(self, target: str) -> float:
        for b in self.latency:
            if b.target == target:
                return b.budget_ms
        raise KeyError(target)

    def margin_text(self) -> str:
        if self.margin is not None:
            return f"{self.margin:.0%} fixed margin"
        return f"predictor p{round(self.quantile * 100)} upper bound"

    def to_json(self) -> dict:
        return {"latency_ms": {b.target: b.budget_ms for b in self.latency},
                "max_params": self.max_params, "max_mflops": self.max_mflops,
                "max_act_kb": self.max_act_kb,
                "margin": self.margin, "quantile": self.quantile, "safety": self.margin_text()}


def _ms(text: str, whole: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise BudgetError(f"latency budget '{text}' in '{whole}' is not a number of ms") from None
    if not (math.isfinite(v) and v > 0):
        raise BudgetError(f"latency budget must be positive ms, got '{text}' in '{whole}'")
    return v


def parse_latency_spec(text: str, default_target: str | None = None) -> tuple[LatencyBudget, ...]:
    """``"25"`` → budget on ``default_target``; ``"a=25,b=40"`` → one budget per target."""
    out = []
    bare = [p for p in (p.strip() for p in text.split(",")) if p and "=" not in p]
    if len(bare) > 1:
        raise BudgetError(f"latency spec '{text}' holds {len(bare)} budgets without a target "
                          f"name; a bare number is the one budget of the target, several "
                          f"are written TARGET=MS,TARGET=MS")
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise BudgetError(f"empty item in latency spec '{text}'")
        if "=" in part:
            name, val = (s.strip() for s in part.split("=", 1))
            if not name:
                raise BudgetError(f"missing target name before '=' in latency spec '{text}'")
            out.append(LatencyBudget(name, _ms(val, text)))
        else:
            if default_target is None:
                raise BudgetError(f"latency budget '{part}' names no target: give a target or "
                                  "write TARGET=MS")
            out.append(LatencyBudget(default_target, _ms(part, text)))
    return tuple(out)
