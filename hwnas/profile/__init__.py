"""Profiling: operator latency tables measured through the deploy compiler."""
from hwnas.profile.table import Latency, LatencyTable, table_path, tables_dir

__all__ = ["Latency", "LatencyTable", "table_path", "tables_dir"]
