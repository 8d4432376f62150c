"""The architectures an emulated device can have: what differs between them is data.

An emulated device is a Debian root of another architecture (Python, its libraries, TVM's
runtime) run by QEMU's user-mode emulator on this machine. Per architecture that takes the
QEMU binary, the Debian architecture name, the manylinux wheel platform and the ELF loader;
a new architecture is one more ``EmulatedArch`` here.
"""
from __future__ import annotations

from dataclasses import dataclass

from hwnas._registry import Registry

__all__ = ["EmulatedArch", "EMULATED_ARCHES", "get_arch"]


@dataclass(frozen=True)
class EmulatedArch:
    name: str                   # what ``platform.machine()`` says on the device
    qemu: str                   # the user-mode emulator (Debian package qemu-user-static)
    debian: str                 # the Debian architecture of the packages
    wheel_machine: str          # the machine part of manylinux wheel tags
    loader: str                 # the ELF interpreter inside the root, relative to it
    targets: tuple[str, ...]    # shipped targets whose libraries run on it (for hints)


EMULATED_ARCHES: Registry[EmulatedArch] = Registry("emulated architecture")


def _register(arch: EmulatedArch) -> None:
    EMULATED_ARCHES.register(arch.name)(arch)


_register(EmulatedArch(name="aarch64", qemu="qemu-aarch64-static", debian="arm64",
                       wheel_machine="aarch64", loader="lib/ld-linux-aarch64.so.1",
                       targets=("rpi4", "cortex-a76")))


def get_arch(name: str) -> EmulatedArch:
    """The registered architecture ``name`` (``arm64`` is accepted for ``aarch64``)."""
    return EMULATED_ARCHES.get({"arm64": "aarch64"}.get(name, name))
