"""TVM's Relax VM on this machine; also the shared VM-timing code for the RPC runtime."""
from __future__ import annotations

import os
import traceback
import weakref
from pathlib import Path

import numpy as np

from hwnas.errors import DeviceError
from hwnas.runtime._base import Runtime, host_description
from hwnas.runtime.bundle_runner import AFFINITY_BIG, AFFINITY_SHARE_ALL

__all__ = ["TVMRuntime", "TVMLocalRuntime", "tvm_device", "run_tvm_library"]


def tvm_device(target, session):
    """The device ``target``'s code runs on in ``session`` (the ``tvm`` module on this machine,
    an RPC session on a remote one): its GPU (``cuda``, ``vulkan``, ...) for a GPU target, else
    the CPU."""
    return session.device(target.tvm_device_type, 0)


def run_tvm_library(lib_path: str | os.PathLike, x: np.ndarray,
                    device: str = "cpu") -> np.ndarray:
    """Load an exported library with the TVM runtime and run its ``main`` once on ``device``
    (a TVM device name: a bundle manifest's ``tvm_device``, ``Target.tvm_device_type``)."""
    import tvm
    from tvm import relax

    dev = tvm.device(device, 0)
    if not dev.exist:
        raise DeviceError(f"{lib_path} runs on a {device} device, and this machine has none "
                          "that TVM's runtime can use")
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib_path)), dev)
    return vm["main"](tvm.runtime.tensor(x, dev)).numpy()


class TVMRuntime(Runtime):
    """Relax VM timing with ``time_evaluator``; subclasses say where modules load and run."""

    family = "tvm"

    def __init__(self, target) -> None:
        super().__init__(target)
        self._loaded: tuple[object, object] | None = None  # (artefact key, VirtualMachine)

    # ---- hooks
    def _device_api(self):
        """What loads modules and names devices: the ``tvm`` module, or an RPC session."""
        raise NotImplementedError

    def _load_module(self, artefact):
        raise NotImplementedError

    def _global(self, name: str):
        raise NotImplementedError

    def _call(self, doing: str, fn, *args):
        """``fn(*args)`` on the device: a local device has no deadline (an RPC one has)."""
        return fn(*args)

    def _release(self, held: list) -> None:
        """Drop the device objects in ``held`` (its entries are their last references). On a
        remote device each one's release is a call that waits for the device's answer, so
        the RPC runtime bounds it; here it is immediate."""
        held.clear()

    def _fail(self, exc: Exception, doing: str) -> DeviceError:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()] or [type(exc).__name__]
        return DeviceError(f"{self.describe_short()}: {doing} failed: {lines[-1]}")

    def _error(self, exc: Exception, doing: str) -> DeviceError:
        """``_fail``'s error, after clearing the failed call's finished frames: their locals (a
        VM, tensors on the device) would keep an RPC session open as long as the caller keeps
        the error, and a TVM RPC server serves one session at a time."""
        traceback.clear_frames(exc.__traceback__)
        return self._fail(exc, doing)

    def describe_short(self) -> str:
        return f"target '{self.target.name}' ({self.address})"

    # ---- shared
    def _device(self):
        return tvm_device(self.target, self._device_api())

    def _threadpool_args(self) -> tuple:
        """``runtime.config_threadpool``'s arguments: one worker per (big) core. (A "shared"
        pool needs a list of cores, which TVM's RPC cannot pass; targets allow it only on a
        local device.)"""
        return (AFFINITY_BIG, int(self.target.threads))

    def pin_threads(self) -> None:
        """Size TVM's thread pool (``threads``) and place it as the target says (``affinity``)."""
        try:
            self._call("configuring the thread pool",
                       self._global("runtime.config_threadpool"), *self._threadpool_args())
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001  (any TVM failure means the device misbehaves)
            raise self._error(exc, "configuring the thread pool") from None

    def _vm(self, artefact):
        from tvm import relax

        key = str(artefact) if isinstance(artefact, (str, os.PathLike)) else id(artefact)
        if self._loaded is None or self._loaded[0] != key:
            old, self._loaded = [self._loaded], None
            self._release(old)
            try:
                vm = self._call(f"loading {artefact}", relax.VirtualMachine,
                                self._load_module(artefact), self._device())
            except DeviceError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc, f"loading {artefact}") from None
            self._loaded = (key, vm)
        return self._loaded[1]

    def _args(self, inputs: dict[str, np.ndarray]) -> list:
        import tvm

        dev = self._device()
        return [self._call("copying the input to the device", tvm.runtime.tensor,
                           np.ascontiguousarray(v), dev) for v in inputs.values()]

    def timer(self, artefact, inputs: dict[str, np.ndarray], func: str = "main"):
        """A ``timer(number, repeat)`` of ``func``. The device objects it uses (the VM, the
        inputs on the device, its evaluators) are held in one list and released through
        ``_release`` once the timer is dropped."""
        # [VM (the timer keeps it, also when another is loaded), inputs, {(number, repeat):
        # evaluator}]: the only references to them, so that dropping them is one bounded step
        held: list = [self._vm(artefact)]
        try:
            held += [self._args(inputs), {}]
            dev = self._device()
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, f"preparing '{func}'") from None

        def timer(number: int, repeat: int) -> list[float]:
            try:
                vm, args, evaluators = held
                ev = evaluators.get((number, repeat))
                if ev is None:
                    ev = evaluators[(number, repeat)] = self._call(
                        f"preparing to time '{func}'", vm.time_evaluator, func, dev,
                        number, repeat)
                return [t * 1e3 for t in self._call(f"timing '{func}'", ev, *args).results]
            except DeviceError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._error(exc, f"timing '{func}'") from None

        weakref.finalize(timer, self._release, held).atexit = False
        return timer

    def run(self, artefact, inputs: dict[str, np.ndarray], func: str = "main") -> list[np.ndarray]:
        try:
            return self._run(artefact, inputs, func)
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, f"running '{func}'") from None

    def _run(self, artefact, inputs, func: str) -> list[np.ndarray]:
        vm = self._vm(artefact)
        held = [self._args(inputs)]      # the inputs on the device, released when done

        def call():
            out = vm[func](*held[0])
            return [o.numpy() for o in (out if isinstance(out, (list, tuple)) else [out])]

        try:
            return self._call(f"running '{func}'", call)
        finally:
            self._release(held)


class TVMLocalRuntime(TVMRuntime):
    """Runs on this machine's CPU (``device = "local"``)."""

    name = "tvm-local"

    def __init__(self, target) -> None:
        super().__init__(target)
        self.pin_threads()

    def _device_api(self):
        import tvm

        return tvm

    def _threadpool_args(self) -> tuple:
        if self.target.affinity != "shared":
            return super()._threadpool_args()
        from hwnas._cpus import allowed_cpus

        cpus = allowed_cpus() or range(int(self.target.threads))
        return (AFFINITY_SHARE_ALL, int(self.target.threads), [str(c) for c in cpus])

    def _global(self, name: str):
        import tvm

        return tvm.get_global_func(name)

    def _load_module(self, artefact):
        import tvm

        if isinstance(artefact, (str, os.PathLike)):
            if not Path(artefact).is_file():
                raise DeviceError(f"compiled library not found: {artefact}")
            return tvm.runtime.load_module(str(artefact))
        return artefact

    def contention(self):
        from hwnas.runtime.contention import CpuContention

        return CpuContention() if CpuContention.available() else None

    def describe(self) -> str:
        mcpu = self.target.mcpu
        return f"{host_description()}; LLVM mcpu {mcpu}; {self.target.threads} TVM threads"
