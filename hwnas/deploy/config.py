"""What a deploy is asked to do: one frozen config, checked before anything is compiled."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from hwnas._checks import check_int, check_seed
from hwnas._outputs import check_output_dir
from hwnas.errors import BudgetError

__all__ = ["CONTENDED_MARGIN", "DeployConfig"]

#: a contended measurement's error against the quiet device, one standard deviation
#: (``hwnas.deploy.loop``)
CONTENDED_MARGIN = 0.06


@dataclass(frozen=True)
class DeployConfig:
    target: object                      # hwnas.targets.Target
    budget_ms: float
    out: Path
    checkpoint: Path | str | None = None  # folder or shipped name (None: the default space's)
    space: str | None = None            # a space name without checkpoint: random weights
    runtime: object = None              # hwnas.runtime.Runtime on the device
    max_rounds: int = 4
    slack: float = 0.10                 # stop once measured ≥ (1 - slack) × budget
    agree: float = 0.10                 # ... or, from round 2, within this of predicted
    strategy: str = "evolution"
    strategy_options: dict = field(default_factory=dict)
    margin: float | None = None         # None: the predictor's p90 bound
    seed: int = 0
    tuning_dir: str | None = None       # the target's tuning database (None: untuned code)
    tune_trials: int = 0                # > 0: top the database up with each round's subnet
    profile_networks: int = 20
    table: Path | None = None           # the latency table file (None: the target's own)
    force: bool = False                 # replace whatever is at ``out``
    predictor: str = "auto"             # auto, table, calibrated or fewshot
    allow_emulated: bool = False        # accept an emulated device and its tables
    contended_margin: float = CONTENDED_MARGIN  # a contended measurement is judged this slower

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))

    def validate(self) -> None:
        """Every field in range (one-line errors), before anything is compiled or measured."""
        self._check_numbers()
        from hwnas.search import STRATEGIES

        STRATEGIES.get(self.strategy)
        if self.predictor != "auto":
            from hwnas.predict import PREDICTORS

            PREDICTORS.get(self.predictor)
        check_seed(self.seed, BudgetError)
        check_int(self.profile_networks, "profile_networks", 0, error=BudgetError)
        if self.space is not None:
            from hwnas.spaces import get_space

            if self.checkpoint is not None:
                raise BudgetError("give a space or a checkpoint, not both: a checkpoint "
                                  "carries its space")
            get_space(self.space)              # an unknown name lists the known ones
        check_output_dir(self.out, "bundle", self.force)

    def _check_numbers(self) -> None:
        if not (isinstance(self.budget_ms, (int, float)) and math.isfinite(self.budget_ms)
                and self.budget_ms > 0):
            raise BudgetError(f"latency budget must be a positive, finite number of ms, got "
                              f"{self.budget_ms!r}")
        if not (isinstance(self.max_rounds, int) and self.max_rounds >= 1):
            raise BudgetError(f"max_rounds must be an integer of at least 1, got {self.max_rounds!r}")
        _check_fraction("slack", self.slack)
        _check_fraction("agree", self.agree)
        if self.margin is not None and not (math.isfinite(self.margin) and 0 <= self.margin < 10):
            raise BudgetError(f"margin must be a fraction in [0, 10), got {self.margin!r}")
        _check_fraction("contended_margin", self.contended_margin)
        if not (isinstance(self.tune_trials, int) and self.tune_trials >= 0):
            raise BudgetError(f"tuning trials must be an integer ≥ 0, got {self.tune_trials!r}")
        if not (isinstance(self.profile_networks, int) and self.profile_networks >= 0):
            raise BudgetError(f"profiled networks must be an integer ≥ 0, got "
                              f"{self.profile_networks!r}")


def _check_fraction(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise BudgetError(f"{name} must be a fraction in [0, 1), got {value!r}")
