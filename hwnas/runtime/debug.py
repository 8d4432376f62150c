"""``debug``: a device whose latencies follow from operator costs, with no compiler.

As nn-Meter's debug backend, it lets the loop, search, profile and farm logic run in tests
without TVM. Its artefacts are JSON files (``write_debug_artefact``) that list, per function,
the multiply-adds, activation elements and operator count of what it would run. A function's
latency is::

    ms = scale × (launch_ms × ops + macs / 1e6 × ms_per_mmac + act / 1e6 × ms_per_mact)

and a whole network (``"network": true``) runs ``network_factor`` times the sum of its
operators (fusion saves a little), plus ``network_ms``. ``scale`` comes from an optional
``drift(sample_index)`` (a slow or busy device, scripted by tests; the clock advances with
every sample any timer returns, so interleaved measurements see the same drift) and each sample gets seeded
log-normal ``noise``. ``busy(i)`` scripts the cores other work holds during the device's
``i``-th contention probe, and ``held(ms)`` how that other work slows a function whose quiet
latency is ``ms`` beyond the drift (a held core costs each network its own share of parallel
speed-up: large networks more). The coefficients come from the target's ``[debug]`` table.
The ``debug`` backend builds these artefacts from the space's costs, and reaches every device
(it only pretends to run there).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from hwnas._io import atomic_write_json, read_json
from hwnas.errors import DeviceError, ExportError, TargetError
from hwnas.runtime._base import Runtime
from hwnas.runtime.backend import RUNTIMES, Artefact, Backend
from hwnas.targets import Target

__all__ = ["DebugRuntime", "DebugBackend", "write_debug_artefact", "debug_costs", "DEBUG_FORMAT"]

DEBUG_FORMAT = "hwnas-debug-artefact/1"
DEFAULTS = {"launch_ms": 0.004, "ms_per_mmac": 0.02, "ms_per_mact": 0.05,
            "network_factor": 0.9, "network_ms": 0.05, "noise": 0.0, "seed": 0}


def write_debug_artefact(path: str | os.PathLike, funcs: dict[str, dict]) -> Path:
    """``funcs``: name → ``{"macs", "act", "ops", "network"}`` (what the function runs)."""
    return atomic_write_json(path, {"format": DEBUG_FORMAT, "funcs": funcs})


class DebugRuntime(Runtime):
    name = "debug"
    family = "debug"

    def __init__(self, target, drift: Callable[[int], float] | None = None,
                 busy: Callable[[int], float] | None = None,
                 held: Callable[[float], float] | None = None, **coef) -> None:
        super().__init__(target)
        self.coef = _coefficients(target, coef)
        self.drift = drift
        self.busy = busy                # scripted other work: cores held in the i-th probe
        self.held = held                # ... and its slowdown of a function of quiet ms
        self._probe = None
        self.calls = 0                  # samples so far (the drift's clock)
        self._rng = np.random.default_rng(int(self.coef["seed"]))
        self._cache: dict[str, dict] = {}

    def _funcs(self, artefact) -> dict:
        key = os.fspath(artefact)
        if key not in self._cache:
            if not Path(key).is_file():
                raise DeviceError(f"compiled library not found: {key}")
            data = read_json(key, "debug artefact", DeviceError)
            if not isinstance(data, dict) or data.get("format") != DEBUG_FORMAT:
                raise DeviceError(f"{key} is not a debug artefact (format '{DEBUG_FORMAT}')")
            self._cache[key] = data["funcs"]
        return self._cache[key]

    def true_ms(self, artefact, func: str = "main") -> float:
        """The noiseless, undrifted latency of ``func``: what a quiet device would measure."""
        try:
            f = self._funcs(artefact)[func]
        except KeyError:
            raise DeviceError(f"{artefact} has no function '{func}'") from None
        c = self.coef
        ms = c["launch_ms"] * f["ops"] + f["macs"] / 1e6 * c["ms_per_mmac"] \
            + f["act"] / 1e6 * c["ms_per_mact"]
        if f.get("network"):
            ms = ms * c["network_factor"] + c["network_ms"]
        return float(ms)

    def timer(self, artefact, inputs: dict[str, np.ndarray], func: str = "main"):
        """Each sample a timer returns advances the drift's clock by one."""
        base = self.true_ms(artefact, func)
        if self.held is not None:
            base *= float(self.held(base))
        sigma = float(self.coef["noise"])

        def timer(number: int, repeat: int) -> list[float]:
            scale = np.array([float(self.drift(self.calls + k)) if self.drift else 1.0
                              for k in range(repeat)])
            self.calls += repeat
            noise = np.exp(self._rng.normal(0.0, sigma, repeat)) if sigma else np.ones(repeat)
            return list(base * scale * noise)

        return timer

    def contention(self):
        if self.busy is None:
            return None
        from hwnas.runtime.contention import ScriptedContention

        if self._probe is None:
            self._probe = ScriptedContention(self.busy)
        return self._probe

    def run(self, artefact, inputs: dict[str, np.ndarray], func: str = "main") -> list[np.ndarray]:
        self.true_ms(artefact, func)           # the same errors as a real device's
        return []

    def describe(self) -> str:
        return f"debug device ({self.target.name}): latencies from costs, no compiler"


def debug_costs(space, ops) -> dict:
    """``{"macs", "act", "ops"}`` summed over ``ops`` (``OpSpec``s of ``space``)."""
    index = {op.key: i for i, op in enumerate(space.op_list)}
    vec = space.cost_vectors()
    ids = [index[op.key] for op in ops]
    return {"macs": float(vec["macs"][ids].sum()), "act": float(vec["act"][ids].sum()),
            "ops": len(ids)}


def _coefficients(target, coef: dict) -> dict:
    """``DEFAULTS``, then the target's ``[debug]`` table (numbers ≥ 0), then ``coef``."""
    where = target.path or target.name
    table = target.extra.get("debug", {})
    if not isinstance(table, dict):
        raise TargetError(f"{where}: key 'debug' must be a table")
    for key, v in table.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < 0:
            raise TargetError(f"{where}: key 'debug.{key}' must be a number ≥ 0")
    cfg = {**DEFAULTS, **table, **coef}
    bad = [k for k in cfg if k not in DEFAULTS]
    if bad:
        raise TargetError(f"{where}: unknown debug coefficient '{bad[0]}'; known: "
                          f"{', '.join(DEFAULTS)}")
    return cfg


@RUNTIMES.register("debug")
class DebugBackend(Backend):
    """Cost files instead of compiled code: no torch, no compiler, any device."""

    name = "debug"
    cache_networks = False          # built in no time, without torch

    def build_ops(self, space, ops: list, target: Target, out_dir: Path, name: str,
                  database=None) -> list[Artefact]:
        if space is None:
            raise ExportError("a debug build needs the space configuration of its operators")
        funcs = {f"op{i}": debug_costs(space, [op]) for i, op in enumerate(ops)}
        path = write_debug_artefact(out_dir / f"{name}.debug.json", funcs)
        return [Artefact(path, f"op{i}") for i in range(len(ops))]

    def build_network(self, space, arch, target: Target, stem: Path, database=None,
                      onnx: Path | None = None) -> Artefact:
        path = write_debug_artefact(Path(f"{stem}.debug.json"), {
            "main": {**debug_costs(space, space.ops(arch)), "network": True}})
        return Artefact(path)

    def connect(self, target: Target, device: str) -> Runtime:
        return DebugRuntime(target)
