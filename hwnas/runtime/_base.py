"""The ``Runtime`` interface: load a built artefact on a device and time it.

A runtime kind's ``Backend`` (``hwnas.runtime.backend``) builds the artefacts and connects the
runtime; ``hwnas.runtime.connect`` picks the one for a target.
"""
from __future__ import annotations

import abc
import os
import platform
from pathlib import Path

import numpy as np

from hwnas.errors import TargetError
from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol, Timer, run_protocol

__all__ = ["Runtime", "parse_address", "host_description"]


class Runtime(abc.ABC):
    """A device that runs the artefacts of its runtime kind (``family``)."""

    name: str = ""
    family: str = ""             # its backend's name in RUNTIMES: what it runs, and the label
                                 # of a table measured with it

    def __init__(self, target) -> None:
        self.target = target

    @abc.abstractmethod
    def timer(self, artefact, inputs: dict[str, np.ndarray], func: str = "main") -> Timer:
        """``timer(number, repeat)``: per-run ms of each of ``repeat`` samples of ``number``
        back-to-back runs of ``func`` (loaded once; calls may alternate with other timers)."""

    def sample(self, artefact, inputs: dict[str, np.ndarray],
               protocol: Protocol = DEFAULT_PROTOCOL, func: str = "main") -> Measurement:
        """Time ``func`` of ``artefact`` with ``protocol``; the latency plus how it was taken."""
        return run_protocol(self.timer(artefact, inputs, func), protocol)

    @abc.abstractmethod
    def run(self, artefact, inputs: dict[str, np.ndarray], func: str = "main") -> list[np.ndarray]:
        """Run once and return the outputs as numpy arrays."""

    @abc.abstractmethod
    def describe(self) -> str:
        """The device (CPU model, cores, address) in words, for table metadata."""

    def measure(self, artefact, inputs: dict[str, np.ndarray],
                protocol: Protocol = DEFAULT_PROTOCOL, func: str = "main") -> Latency:
        return self.sample(artefact, inputs, protocol, func).latency

    def contention(self):
        """A probe of the other work on the device (``hwnas.runtime.contention``), or None
        where this runtime cannot see it (a remote device)."""
        return None

    @property
    def address(self) -> str:
        return "local"

    @property
    def emulator(self) -> str | None:
        """The emulator the device runs under, as the device reports it (its timings are then
        not the real device's); None for a real device, or one that does not say."""
        return None

    def close(self) -> None:
        """Release the device (connections, loaded modules)."""

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def host_description() -> str:
    """This machine's CPU model and logical core count, e.g. ``AMD EPYC 7B13, 2 logical CPUs``."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def parse_address(text: str, what: str = "RPC address") -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) \
            or not 1 <= int(port) <= 65535:
        raise TargetError(f"{what} must be HOST:PORT with a port in [1, 65535], got '{text}'")
    return host, int(port)
