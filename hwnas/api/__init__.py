"""The front door: the three journeys from Python, as the CLI runs them.

Deploy under 0.6 ms on this machine::

    import hwnas
    manifest = hwnas.deploy("x86-host", latency_ms=0.6, out="bundle")
    print(manifest["arch"], manifest["latency"]["measured"]["median_ms"])

Every function raises an ``hwnas.errors.HwnasError`` subclass with a one-line message on bad
input; nothing here imports torch, TVM or onnxruntime before it is called.

One module per journey: ``lookup`` (the catalogues and nouns: ``list_*``, ``get_space``,
``load_*``, ``connect``), ``importing`` (published latency tables and accuracy data),
``measuring`` (a device's table, tuning database and few-shot predictor: ``profile``,
``tune``, ``adapt``), ``predicting`` (``predict``), ``training`` (``train_supernet``),
``searching`` (``search``), ``deploying`` (``export``, ``deploy``) and ``devices`` (an
emulated device, a local RPC farm, a tracker's state); ``_arguments`` holds the checks
they share. Each CLI verb parses its flags, calls one of these and prints what it returns.
"""
from __future__ import annotations

from hwnas.api.deploying import deploy, export
from hwnas.api.devices import (emulated_arch, list_emulated_arches, serve_emulated_device,
                               setup_emulated_device, start_farm, tracker_status)
from hwnas.api.importing import import_accuracy, import_table
from hwnas.api.lookup import (connect, get_space, list_accuracy_sources, list_checkpoints,
                              list_predictors, list_spaces, list_strategies, list_targets,
                              load_predictor, load_supernet, load_target, load_targets)
from hwnas.api.measuring import Profiled, adapt, check_tunable, profile, tune
from hwnas.api.predicting import predict
from hwnas.api.searching import search
from hwnas.api.training import train_supernet

__all__ = ["list_targets", "list_spaces", "list_predictors", "list_strategies",
           "list_accuracy_sources", "list_checkpoints", "get_space", "load_target",
           "load_supernet", "load_predictor", "connect", "adapt", "search", "export", "deploy",
           "profile", "Profiled", "tune", "check_tunable", "predict", "load_targets",
           "import_table", "import_accuracy", "train_supernet", "list_emulated_arches",
           "emulated_arch", "setup_emulated_device", "serve_emulated_device", "start_farm",
           "tracker_status"]
