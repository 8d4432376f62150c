"""hwnas: hardware-aware neural architecture search, compiled with Apache TVM.

The front door (``hwnas.api``), re-exported here::

    import hwnas
    hwnas.list_targets()                                    # devices
    space = hwnas.load_supernet().space                     # the shipped supernet's space
    pred = hwnas.load_predictor("x86-host", space)          # its latency on this machine
    hwnas.adapt("rpi4", measure=10, rpc="10.0.0.7:9090")    # a new device from 10 networks
    best = hwnas.search("x86-host", 6, space=space)         # its best arch under 6 ms
    manifest = hwnas.deploy("x86-host", latency_ms=0.6, out="bundle")

``import hwnas`` loads neither torch, TVM nor onnxruntime; each function loads what it needs.
"""
import sys as _sys

from hwnas import _cpus  # noqa: F401  (records the CPU mask before anything pins a thread)
from hwnas._versions import __version__
from hwnas.api import (adapt, connect, deploy, export, get_space, list_accuracy_sources,
                       list_checkpoints, list_predictors, list_spaces, list_strategies,
                       list_targets, load_predictor, load_supernet, load_target, search)
from hwnas.errors import HwnasError

__all__ = ["__version__", "HwnasError", "list_targets", "list_spaces", "list_predictors",
           "list_strategies", "list_accuracy_sources", "list_checkpoints", "get_space",
           "load_target", "load_supernet", "load_predictor", "connect", "adapt", "search",
           "export", "deploy"]


class _FrontDoor(type(_cpus)):
    """``hwnas.search``, ``hwnas.export`` and ``hwnas.deploy`` name both a front-door function
    and a subpackage; importing a subpackage would rebind the package attribute to the module.
    The functions keep the attribute; the subpackages stay importable by their full names."""

    def __setattr__(self, name, value):
        if name in _FUNCTIONS and isinstance(value, type(_cpus)):
            return
        super().__setattr__(name, value)


_FUNCTIONS = frozenset({"search", "export", "deploy"})
_sys.modules[__name__].__class__ = _FrontDoor
