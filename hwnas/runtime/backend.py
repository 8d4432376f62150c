"""``Backend``: one runtime kind, as a target's ``runtime`` names it.

As nn-Meter's backends (a builder, a connector and a timer), a backend builds the artefact its
devices run (for operators and for whole networks), says whether compiling it uses a tuning
database, and connects to a device; the ``Runtime`` it returns times artefacts and probes the
device's contention. Each kind registers under its name in ``RUNTIMES``, and callers ask the
backend (``hwnas.runtime.backend_of``) instead of branching on the name.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnas._registry import Registry
from hwnas.runtime._base import Runtime
from hwnas.targets import Target

__all__ = ["Artefact", "Backend", "RUNTIMES"]

RUNTIMES: Registry = Registry("runtime")


@dataclass(frozen=True)
class Artefact:
    """A built file, the function in it to run, and what the compiler made of it."""

    path: Path
    func: str = "main"
    tuning: dict | None = None      # {"kernels", "tuned", "untuned"}; None: nothing was compiled
    files: dict[str, str] = field(default_factory=dict)    # role → more files beside it

    @property
    def compiled(self) -> bool:
        return self.tuning is not None


class Backend(abc.ABC):
    """How one runtime kind builds what its devices run, and how it reaches a device."""

    name: str = ""
    tuned: bool = False             # compiles with a MetaSchedule tuning database
    local_only: bool = False        # runs only on this machine (no RPC server or tracker)
    cache_networks: bool = True     # built networks are worth keeping across runs

    @abc.abstractmethod
    def build_ops(self, space, ops: list, target: Target, out_dir: Path, name: str,
                  database=None) -> list[Artefact]:
        """One artefact per ``OpSpec`` of ``ops`` (of ``space``; None where the backend needs no
        space), written into ``out_dir`` under ``name``; ``database``: tuned kernels or None."""

    @abc.abstractmethod
    def build_network(self, space, arch, target: Target, stem: Path, database=None,
                      onnx: Path | None = None) -> Artefact:
        """``arch`` of ``space`` as one artefact, written to ``stem`` plus its suffix.

        ``onnx``: the network already exported with its weights (else built from the space)."""

    @abc.abstractmethod
    def connect(self, target: Target, device: str) -> Runtime:
        """A runtime on ``device``: ``"local"``, ``"rpc"``, ``rpc://HOST:PORT`` or
        ``tracker://HOST:PORT/KEY``."""

    def run_here(self, target: Target, path: Path,
                 inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run ``path``'s ``main`` once on this machine (a parity check, untimed)."""
        with self.connect(target, "local") as runtime:
            return runtime.run(path, inputs)
