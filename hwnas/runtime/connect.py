"""``connect``: the runtime a target's measurements run on; ``backend_of``: the backend of a
runtime name, checked against ``RUNTIMES``."""
from __future__ import annotations

from hwnas.errors import TargetError
from hwnas.runtime._base import Runtime
from hwnas.runtime.backend import RUNTIMES, Backend
from hwnas.targets import Target

__all__ = ["connect", "backend_of", "runtime_names"]


def _register() -> None:
    import hwnas.runtime.debug  # noqa: F401  (registers)
    import hwnas.runtime.onnxruntime  # noqa: F401
    import hwnas.runtime.tvm_backend  # noqa: F401


def runtime_names() -> list[str]:
    """Every registered runtime kind."""
    _register()
    return RUNTIMES.names()


def backend_of(target: Target | None = None, runtime: str | None = None) -> Backend:
    """The backend of ``runtime``, or of ``target``'s own runtime when that is None."""
    kind = runtime or target.runtime
    if kind not in runtime_names():
        where = "runtime" if runtime else f"{target.path or target.name}: key 'runtime'"
        raise TargetError(f"{where} must be one of {runtime_names()}, got '{kind}'")
    return RUNTIMES.create(kind)


def connect(target: Target, rpc: str | None = None, tracker: str | None = None,
            key: str | None = None, runtime: str | None = None) -> Runtime:
    """The runtime for ``target`` (of its own kind, or of ``runtime``) on its ``device``.

    ``rpc``/``tracker`` override the target's ``device``; a target whose device is ``"rpc"``
    needs one of them. An unreachable device raises ``DeviceError`` with a one-line reason.
    """
    backend = backend_of(target, runtime)
    device = target.device
    if rpc:
        device = f"rpc://{rpc}"
    elif tracker:
        if not key:
            raise TargetError("a tracker needs a device key (the key registered at the tracker)")
        device = f"tracker://{tracker}/{key}"
    if backend.local_only and device != "local":
        raise TargetError(f"target '{target.name}': the {backend.name} runtime runs only on "
                          f"this machine, not on {device}")
    return backend.connect(target, device)
