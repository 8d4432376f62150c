"""What a device says about itself over TVM RPC: the remote function ``hwnas.device_info``.

This file runs on the device, in a Python that has TVM but no hwnas: an emulated device's
setup copies it into the root as ``hwnas_device_info.py`` and a ``.pth`` line registers the
function in the RPC server's processes (``python -m tvm.exec.*``), before the session forks.
The function returns JSON: the machine, the CPU the device's ``/proc/cpuinfo`` names and,
when the device is an emulator, which one (``HWNAS_EMULATOR``, set by the emulator's
launcher). A stock TVM RPC server has no such function; the host then knows nothing more
than its target file says.
"""
import json
import os
import platform
import sys

__all__ = ["FUNCTION", "info", "register", "PTH_LINE"]

FUNCTION = "hwnas.device_info"

# A ``.pth`` line runs at every interpreter start; only TVM's RPC processes register.
PTH_LINE = ("import sys; (sys.orig_argv[1:2] == ['-m'] and sys.orig_argv[2:3] != [] and "
            "sys.orig_argv[2].startswith('tvm.exec.') and "
            "__import__('hwnas_device_info').register())\n")

_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x51": "Qualcomm", "0x61": "Apple", "0x48": "HiSilicon"}


def _cpu_model() -> str:
    """The CPU ``/proc/cpuinfo`` names (under qemu-user 7.2 that is the host's)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return ""
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "model", "hardware", "cpu model"):   # x86's "model" is a number
        if fields.get(key) and not fields[key].isdigit():
            return fields[key]
    implementer = fields.get("cpu implementer")
    if implementer:
        return f"{_ARM_IMPLEMENTERS.get(implementer, implementer)} CPU part {fields.get('cpu part')}"
    return ""


def info() -> dict:
    tvm = sys.modules.get("tvm")
    return {"machine": platform.machine(), "system": platform.system(),
            "python": platform.python_version(), "tvm": getattr(tvm, "__version__", None),
            "cpu": _cpu_model(), "cpus": os.cpu_count(),
            "emulator": os.environ.get("HWNAS_EMULATOR") or None}


def register() -> None:
    import tvm_ffi

    tvm_ffi.register_global_func(FUNCTION, lambda: json.dumps(info()), override=True)
