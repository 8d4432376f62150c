"""Predictors: latency by name (``PREDICTORS``: ``table``, ``calibrated``, ``fewshot``), the
supernet's accuracy (``ACC_MODELS``: ``gp``, ``ridge``) and where accuracy comes from
(``ACCURACY_SOURCES``: ``supernet``, ``ofa-predictor``, ``measured``; each space configuration
names those it accepts).

``table`` sums a latency table; ``calibrated`` corrects the sum with whole networks measured on
the device; ``fewshot`` adapts to a new device from a few measured networks, the archs' costs
and other devices (``hwnas.predict.adapt`` fits and saves it); ``feedback_for`` folds a
deploy's own measurements into any of them (as more samples of a few-shot predictor, as a
measured/predicted correction of the others). ``load_predictor`` finds a target's predictor for
a space.
"""
from hwnas.predict._base import PREDICTORS, LatencyPredictor
from hwnas.predict.accuracy import ACC_MODELS, fit_accuracy_predictor, load_accuracy_predictor
from hwnas.predict.accuracy_sources import (ACCURACY_SOURCES, AccuracySource,
                                            find_accuracy_source, load_accuracy_source)
from hwnas.predict.calibrated import CalibratedPredictor, calibrate_table
from hwnas.predict.correction import FewShotFeedback, MeasuredCorrection, feedback_for
from hwnas.predict.fewshot import (FAMILIES, FewShotPredictor, SourceFactors, SourceMatrix,
                                   TargetSamples, split_target)
from hwnas.predict.loading import calibrated_file, fewshot_beside, load_predictor, table_space
from hwnas.predict.table import TablePredictor

__all__ = ["PREDICTORS", "LatencyPredictor", "TablePredictor", "CalibratedPredictor",
           "calibrate_table", "calibrated_file", "load_predictor", "table_space",
           "fewshot_beside", "FewShotPredictor", "SourceFactors", "SourceMatrix", "TargetSamples",
           "split_target", "FAMILIES", "MeasuredCorrection", "FewShotFeedback", "feedback_for",
           "ACC_MODELS", "fit_accuracy_predictor", "load_accuracy_predictor",
           "ACCURACY_SOURCES", "AccuracySource", "load_accuracy_source", "find_accuracy_source"]
