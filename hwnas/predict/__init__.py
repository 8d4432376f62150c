"""Latency predictors by name: ``PREDICTORS.get("table")(space, table)``."""
from hwnas.predict._base import PREDICTORS, LatencyPredictor
from hwnas.predict.table import TablePredictor

__all__ = ["PREDICTORS", "LatencyPredictor", "TablePredictor"]
