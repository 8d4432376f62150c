"""Profiling: operator latency tables measured through the deploy compiler.

``table`` loads eagerly (the runtimes and predictors need ``Latency``); the profiler loads on
first use, because it needs the runtimes in turn.
"""
from hwnas.profile.table import Latency, LatencyTable, table_path, tables_dir

__all__ = ["Latency", "LatencyTable", "table_path", "tables_dir", "measure_network",
           "sample_archs", "validation", "ProfileOptions", "ProfileReport", "profile"]

_LAZY = {"measure_network": "networks", "sample_archs": "networks", "validation": "networks",
         "ProfileOptions": "profiler", "ProfileReport": "profiler", "profile": "profiler"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"hwnas.profile.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hwnas.profile' has no attribute '{name}'")
