"""Predictors: latency by name (``PREDICTORS``: ``table``, ``calibrated``, ``fewshot``) and the
supernet's accuracy (``ACC_MODELS``: ``gp``, ``ridge``).

``table`` sums a latency table; ``calibrated`` corrects the sum with whole networks measured on
the device; ``fewshot`` adapts to a new device from a few measured networks and other devices;
``MeasuredCorrection`` folds a deploy's own measurements into any of them. ``load_predictor``
finds a target's predictor for a space.
"""
from hwnas.predict._base import PREDICTORS, LatencyPredictor
from hwnas.predict.accuracy import ACC_MODELS, fit_accuracy_predictor, load_accuracy_predictor
from hwnas.predict.calibrated import CalibratedPredictor, calibrate_table
from hwnas.predict.correction import MeasuredCorrection
from hwnas.predict.fewshot import (FewShotPredictor, SourceFactors, SourceMatrix, TargetSamples,
                                   split_target)
from hwnas.predict.loading import calibrated_file, load_predictor, table_space
from hwnas.predict.table import TablePredictor

__all__ = ["PREDICTORS", "LatencyPredictor", "TablePredictor", "CalibratedPredictor",
           "calibrate_table", "calibrated_file", "load_predictor", "table_space",
           "FewShotPredictor", "SourceFactors", "SourceMatrix", "TargetSamples", "split_target",
           "MeasuredCorrection", "ACC_MODELS", "fit_accuracy_predictor", "load_accuracy_predictor"]
