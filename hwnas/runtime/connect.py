"""``connect``: the runtime a target's measurements run on."""
from __future__ import annotations

from hwnas.errors import DeviceError, TargetError
from hwnas.runtime._base import RUNTIMES, Runtime

__all__ = ["connect"]


def connect(target, rpc: str | None = None, tracker: str | None = None, key: str | None = None,
            runtime: str | None = None) -> Runtime:
    """The runtime for ``target``: onnxruntime, local TVM, or TVM over RPC.

    ``rpc``/``tracker`` override the target's ``device``; a target whose device is ``"rpc"``
    needs one of them. An unreachable device raises ``DeviceError`` with a one-line reason.
    """
    import hwnas.runtime.debug  # noqa: F401  (registers)
    import hwnas.runtime.onnxruntime  # noqa: F401
    import hwnas.runtime.tvm_local  # noqa: F401
    import hwnas.runtime.tvm_rpc  # noqa: F401

    kind = runtime or target.runtime
    device = target.device
    if rpc:
        device = f"rpc://{rpc}"
    elif tracker:
        if not key:
            raise TargetError("a tracker needs a device key (the key registered at the tracker)")
        device = f"tracker://{tracker}/{key}"
    if kind == "debug":
        return RUNTIMES.create("debug", target=target)
    if kind == "onnxruntime":
        if device != "local":
            raise TargetError(f"target '{target.name}': the onnxruntime runtime runs only on "
                              f"this machine, not on {device}")
        return RUNTIMES.create("onnxruntime", target=target)
    if device == "local":
        if target.is_cross:
            raise DeviceError(f"target '{target.name}' cannot run on this machine; give "
                              "an RPC server (HOST:PORT) or a tracker and device key")
        return RUNTIMES.create("tvm-local", target=target)
    if device == "rpc":
        raise DeviceError(f"target '{target.name}' is reached over RPC; give an RPC server "
                          "(HOST:PORT) or a tracker and device key")
    return RUNTIMES.create("tvm-rpc", target=target, device=device)
