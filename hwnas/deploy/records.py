"""What a deploy records: each round, the predictor's feedback, and the shipped manifest.

They serialise (``to_json``) to the keys ``manifest.json`` has always had: its ``latency``
block and its ``deploy`` section with ``history`` (one ``Round`` each), ``table`` and
``predictor``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hwnas.deploy.table_reuse import TableRecord
from hwnas.profile.deploy_timing import BundleLatency, ReferenceReading

__all__ = ["Round", "PredictorRecord", "DeployManifest"]


@dataclass(frozen=True)
class Round:
    """One round: the subnet the search chose, its bundle's measurement, and why the loop
    stopped there (``stop``: slack, agree, bracket, probe or repeat; None: it went on).
    ``judged_ms`` decides within budget (``hwnas.deploy.loop.judge``): the slowest of the
    drift-corrected median, the raw one and the one through the bundle's ``runner.py``
    (``shipped``, on this machine's CPU), or the corrected one times ``1 + contended_margin``
    when the device was contended. A ``repeat_of`` round chose an earlier
    round's subnet again and carries that round's measurement, not a new one."""

    round: int
    arch: str
    predicted_ms: float
    predictor: str
    predicted_accuracy: float | None
    margin: float | None = None         # the probe's search margin
    untuned_kernels: int = 0
    measured: BundleLatency | None = None
    judged_ms: float = 0.0
    accuracy: float | None = None
    dir: Path | None = field(default=None, compare=False)   # search/ and bundle/, in work
    repeat_of: int | None = None
    stop: str | None = None

    @property
    def measured_ms(self) -> float:
        return self.measured.median_ms

    def to_json(self) -> dict:
        out = {"round": self.round, "arch": self.arch, "predicted_ms": self.predicted_ms,
               "predictor": self.predictor, "predicted_accuracy": self.predicted_accuracy}
        if self.margin is not None:
            out["margin"] = self.margin
        out.update(untuned_kernels=self.untuned_kernels, measured=self.measured.to_json(),
                   judged_ms=self.judged_ms, accuracy=self.accuracy)
        if self.repeat_of is not None:
            out["repeat_of"] = self.repeat_of
        if self.stop is not None:
            out["stop"] = self.stop
        return out


@dataclass(frozen=True)
class PredictorRecord:
    """The latency predictor a deploy used, and how its measurements were fed back."""

    kind: str
    selection: str
    fed_back: int
    as_samples: bool

    def to_json(self) -> dict:
        how = ("each measured network refits the few-shot predictor as one more sample"
               if self.as_samples else "measured/predicted ratio of the nearest measured "
               "networks scales the predictor (after the device's factor from the reference "
               "network); its model is not refitted")
        return {"kind": self.kind, "selection": self.selection,
                "feedback": {"measurements_fed_back": self.fed_back,
                             "as_samples": self.as_samples, "how": how}}


@dataclass(frozen=True)
class DeployManifest:
    """The shipped bundle's ``manifest.json``: the export's (``bundle``), with the chosen
    round's measurement and verdict, the sample input and the ``deploy`` section."""

    bundle: dict
    best: Round
    rounds: tuple[Round, ...]
    budget_ms: float
    contended_margin: float
    table: TableRecord
    reading: ReferenceReading | None
    predictor: PredictorRecord
    strategy: str
    wall_s: float
    sample_label: int | None            # None: no dataset, no sample image
    classes: tuple[str, ...] | None = None

    def latency(self) -> dict:
        best, budget = self.best, self.budget_ms
        out = {**self.bundle["latency"], "measured": best.measured.to_json(),
               "budget_ms": budget, "predicted_ms": best.predicted_ms,
               "predictor": best.predictor, "within_budget": True,
               "slack": (budget - best.measured_ms) / budget,
               "contended_margin": self.contended_margin}
        if best.judged_ms != round(best.measured_ms, 5):
            out["judged_ms"] = best.judged_ms
        return out

    def to_json(self) -> dict:
        out = {**self.bundle, "latency": self.latency()}
        if self.sample_label is not None:           # a held-out image of the dataset
            out["sample"] = {"file": "sample_input.npy", "label": self.sample_label}
        if self.classes:
            out["classes"] = list(self.classes)
        out["deploy"] = {
            "rounds": len(self.rounds), "chosen_round": self.best.round,
            "history": [r.to_json() for r in self.rounds],
            "table": {**self.table.to_json(),
                      "reference": self.reading.to_json() if self.reading else None},
            "predictor": self.predictor.to_json(), "wall_s": round(self.wall_s, 1),
            "strategy": self.strategy}
        return out
