"""Logging set-up for the CLI (library code only calls ``logging.getLogger``)."""
from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging", "progress"]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record, so a handler set up
    under one stderr (a test's captured one, since closed) never writes to a closed file."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(verbose: bool = False) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("hwnas")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def progress(iterable=None, total=None, desc: str = "", disable: bool | None = None):
    """A tqdm progress bar on stderr that stays quiet when stderr is not a terminal."""
    from tqdm import tqdm

    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, file=sys.stderr,
                dynamic_ncols=True, leave=False)
