"""One error family. The CLI prints ``str(err)`` on one line and exits non-zero."""
from __future__ import annotations

__all__ = [
    "HwnasError", "ArchError", "SpaceError", "TargetError", "TableError", "ExportError",
    "DeviceError", "BudgetError", "DataError", "RegistryError", "OutputError",
]


class HwnasError(Exception):
    """Base of every error hwnas raises on purpose."""

    exit_code = 2


class RegistryError(HwnasError):
    """An unknown name was asked of a registry."""


class ArchError(HwnasError, ValueError):
    """A malformed or out-of-space architecture."""


class SpaceError(HwnasError):
    """A search space was configured wrongly."""


class TargetError(HwnasError):
    """A missing or malformed target file."""


class TableError(HwnasError):
    """A corrupt latency table, or a key the table does not hold."""


class ExportError(HwnasError):
    """ONNX export, parity check or compilation failed."""


class DeviceError(HwnasError):
    """The device could not be reached, or it dropped the connection."""

    exit_code = 3


class BudgetError(HwnasError):
    """A constraint that no architecture in the space can meet."""


class DataError(HwnasError):
    """A dataset that is missing or malformed."""


class OutputError(HwnasError):
    """An output path that would overwrite something that is not an earlier hwnas output."""
