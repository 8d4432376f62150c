"""Latency predictors by name: ``PREDICTORS.get("table")(space, table)``.

``table`` sums a latency table; ``calibrated`` corrects the sum with whole networks measured on
the device; ``fewshot`` adapts to a new device from a few measured networks and other devices.
"""
from hwnas.predict._base import PREDICTORS, LatencyPredictor
from hwnas.predict.calibrated import CalibratedPredictor, calibrate_table, calibrated_path
from hwnas.predict.fewshot import (FewShotPredictor, SourceFactors, SourceMatrix, TargetSamples,
                                   split_target)
from hwnas.predict.table import TablePredictor

__all__ = ["PREDICTORS", "LatencyPredictor", "TablePredictor", "CalibratedPredictor",
           "calibrate_table", "calibrated_path", "FewShotPredictor", "SourceFactors",
           "SourceMatrix", "TargetSamples", "split_target"]
