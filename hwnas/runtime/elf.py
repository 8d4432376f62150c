"""Which machine a compiled library is for, read from its ELF header (no tools needed).

A library of the wrong architecture that reaches a device fails there with the dynamic
loader's words ("cannot open shared object file"); reading the header first lets the host
say what is wrong.
"""
from __future__ import annotations

import os
import struct

__all__ = ["elf_machine", "same_machine"]

# e_machine values (System V ABI) and the names ``platform.machine()`` gives on those CPUs
_MACHINES = {3: "i686", 40: "armv7l", 62: "x86_64", 183: "aarch64", 243: "riscv64",
             21: "ppc64le", 22: "s390x"}
_ALIASES = {"arm64": "aarch64", "amd64": "x86_64", "armv7": "armv7l", "armhf": "armv7l"}


def elf_machine(path: str | os.PathLike) -> str | None:
    """``"aarch64"``, ``"x86_64"``, ...: the machine of an ELF file; None for anything else
    (a tar archive, an unknown machine)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    order = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack(order + "H", head[18:20])
    return _MACHINES.get(machine)


def same_machine(a: str, b: str) -> bool:
    """Whether two machine names (``platform.machine()``, Debian's or ELF's) are one."""
    def norm(m: str) -> str:
        m = m.lower()
        return _ALIASES.get(m, m)

    return norm(a) == norm(b)
