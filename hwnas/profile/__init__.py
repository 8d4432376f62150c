"""Profiling: operator latency tables and whole networks, measured through the deploy compiler
(``samples``: the few networks ``hwnas adapt`` measures on a new device).

``table`` loads eagerly; the profiler and the network helpers load on first use.
"""
from hwnas.profile.table import LatencyTable, table_path, target_tables_dir, targets_with_table

__all__ = ["LatencyTable", "table_path", "target_tables_dir", "targets_with_table", "measure_network",
           "sample_archs", "validation", "ProfileOptions", "ProfileReport", "profile",
           "informative_archs", "measure_samples"]

_LAZY = {"measure_network": "networks", "sample_archs": "networks", "validation": "networks",
         "ProfileOptions": "profiler", "ProfileReport": "profiler", "profile": "profiler",
         "informative_archs": "samples", "measure_samples": "samples"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"hwnas.profile.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hwnas.profile' has no attribute '{name}'")
