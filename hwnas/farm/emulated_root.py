"""The root file system of an emulated device, set up once per architecture and cached.

The root holds Debian's Python of the device's architecture (this host's Python version) and
its libraries, plus numpy and TVM's *runtime* (the wheel's ``libtvm_runtime`` and
``libtvm_runtime_extra``, without the 240 MB compiler library) and what TVM's RPC server needs,
all of this host's versions. ``root/usr/bin/python3`` is a launcher that runs the root's Python
under qemu-user, so that TVM's stock ``python -m tvm.exec.rpc_server`` (and a bundle's
``run.py``) run as they would on the device.

Setup goes in steps, each resumable, under ``$HWNAS_CACHE/emulated/<arch>`` (default
``~/.cache/hwnas/emulated/<arch>``):

1. ``index``: Debian's package lists for the architecture, kept in a private apt state in the
   cache (the host's dpkg and apt configuration are not changed);
2. ``packages``: ``apt-get download`` of pythonX.Y and the libraries it needs;
3. ``wheels``: ``pip download`` of the device's wheels from PyPI;
4. ``root``: everything unpacked into ``root.partial``, the launcher written, the result run
   once under qemu to check it, and only then renamed to ``root``.

``setup.json`` records the steps done and the plan they followed (versions, emulator). A root
whose setup did not finish is never used: the next setup completes it from the last finished
step, and a changed plan (another TVM version, say) rebuilds what depends on it.
"""
from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwnas._io import atomic_write_text
from hwnas.errors import DeviceError
from hwnas.farm.emulated_arch import EmulatedArch, get_arch
from hwnas.farm.emulated_state import (STATE_FILE, STEPS, SetupState, locked, read_state,
                                       save_state)

__all__ = ["EmulatedRoot", "default_cache_dir", "find_qemu", "setup_plan", "ensure_root",
           "DEVICE_WHEELS"]

log = logging.getLogger("hwnas.farm")

FORMAT = "hwnas-emulated-root/1"
#: the device's Python packages, pinned to the versions this host runs
DEVICE_WHEELS = ("apache-tvm", "apache-tvm-ffi", "numpy", "psutil", "cloudpickle",
                 "typing_extensions")
#: left out of the TVM wheel: the compiler, CUDA, and headers and sources for building
_RUNTIME_ONLY_SKIP = ("tvm/lib/libtvm_compiler.so", "tvm/lib/libtvm_runtime_cuda.so",
                      "tvm/3rdparty/", "tvm/include/", "tvm/src/")
_KEEP_PACKAGE = re.compile(r"^(lib.*|python3.*|zlib1g|gcc-\d+-base|media-types)$")
_DROP_PACKAGE = re.compile(r"^(libperl.*|libgdbm-compat.*)$")
_SITE = "usr/lib/python3/dist-packages"


@dataclass
class EmulatedRoot:
    """A finished root: ``python`` runs the device's Python under the emulator."""

    arch: EmulatedArch
    cache_dir: Path
    device: dict = field(default_factory=dict)   # what the device's Python reported at setup
    setup_s: float = 0.0
    cached: bool = True                          # nothing had to be done

    @property
    def path(self) -> Path:
        return self.cache_dir / "root"

    @property
    def python(self) -> Path:
        return self.path / "usr" / "bin" / "python3"

    def describe(self) -> str:
        d = self.device
        return (f"{self.arch.name} Python {d.get('python', '?')} with TVM {d.get('tvm', '?')} "
                f"(runtime only) under {d.get('emulator', self.arch.qemu)}")


def default_cache_dir(arch: str) -> Path:
    """``$HWNAS_CACHE/emulated/<arch>``, else ``~/.cache/hwnas/emulated/<arch>``."""
    from hwnas.compiler.database import cache_root

    return cache_root() / "emulated" / get_arch(arch).name


def find_qemu(arch: EmulatedArch) -> str:
    found = shutil.which(arch.qemu)
    if not found:
        raise DeviceError(f"{arch.qemu} not found: an emulated {arch.name} device needs the "
                          "Debian package qemu-user-static")
    return found


def _qemu_version(qemu: str) -> str:
    out = _run([qemu, "--version"], "asking the emulator its version", timeout_s=30)
    m = re.search(r"version\s+(\S+)", out)
    return f"{Path(qemu).name} {m.group(1) if m else '?'}"


def setup_plan(arch: EmulatedArch, qemu: str) -> dict:
    """What a root is built from: a step whose inputs changed (another TVM version, another
    emulator, a newer hwnas launcher) is redone, and every step after it."""
    wheels = {}
    for name in DEVICE_WHEELS:
        try:
            wheels[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wheels[name] = None
    return {"format": FORMAT, "arch": arch.name, "debian": arch.debian,
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}", "wheels": wheels,
            "qemu": qemu, "device_files": _device_files_digest()}


def _device_files_digest() -> str:
    import hashlib

    from hwnas.farm import device_info

    text = "\0".join([Path(device_info.__file__).read_text(), _LAUNCHER, _CHECK,
                      *_RUNTIME_ONLY_SKIP])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- the steps
def _run(cmd: list[str], doing: str, cwd: Path | None = None, timeout_s: float = 1800) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        raise DeviceError(f"{doing} needs {cmd[0]}, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{doing} did not finish within {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines()
                 if ln.strip() and not ln.startswith(("WARNING: Location", "N: "))]
        raise DeviceError(f"{doing} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def _apt_options(arch: EmulatedArch, cache_dir: Path) -> list[str]:
    import pwd

    apt = cache_dir / "apt"
    opts = {"APT::Architecture": arch.debian, "APT::Architectures": arch.debian,
            "Dir::State::Lists": apt / "lists", "Dir::Cache": apt / "cache",
            "Dir::State::Status": "/dev/null", "Acquire::Languages": "none",
            "APT::Sandbox::User": pwd.getpwuid(os.getuid()).pw_name}
    return [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]


def _step_index(arch: EmulatedArch, cache_dir: Path, plan: dict, _record: dict) -> dict:
    apt = cache_dir / "apt"
    for d in (apt / "lists" / "partial", apt / "cache" / "archives" / "partial"):
        d.mkdir(parents=True, exist_ok=True)
    log.info("emulated %s: reading Debian's %s package lists", arch.name, arch.debian)
    try:
        _run(["apt-get", *_apt_options(arch, cache_dir), "-qq", "update"],
             f"apt-get update for {arch.debian}")
    except DeviceError as exc:       # an unreachable extra source is fine if Debian's answered
        log.warning("%s", exc)
    if not any((apt / "lists").glob(f"*binary-{arch.debian}_Packages*")):
        raise DeviceError(f"no Debian package list for {arch.debian} could be read (is a "
                          "Debian mirror reachable and configured in /etc/apt/sources.list.d?)")
    return {"apt_lists_bytes": _size(apt / "lists")}


def _packages(arch: EmulatedArch, cache_dir: Path, python: str) -> list[str]:
    roots = [f"python{python}-minimal", f"libpython{python}-stdlib", "libstdc++6"]
    opts = _apt_options(arch, cache_dir)
    try:
        out = _run(["apt-cache", *opts, "depends", "--recurse", "--no-recommends",
                    "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                    "--no-enhances", *roots], "resolving the device's Debian packages")
    except DeviceError:
        raise DeviceError(f"Debian's {arch.debian} package lists have no python{python} (this "
                          f"host's Python version): the emulated device needs a Debian release "
                          f"that ships it") from None
    names = sorted({ln.strip() for ln in out.splitlines() if ln and not ln[0].isspace()
                    and not ln.startswith("<")})
    return [n for n in names if _KEEP_PACKAGE.match(n) and not _DROP_PACKAGE.match(n)]


def _step_packages(arch: EmulatedArch, cache_dir: Path, plan: dict, _record: dict) -> dict:
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    wanted = _packages(arch, cache_dir, plan["python"])
    have = {p.name.split("_", 1)[0] for p in debs.glob("*.deb")}
    todo = [n for n in wanted if n not in have]
    log.info("emulated %s: %d Debian packages (python%s and its libraries), %d to download",
             arch.name, len(wanted), plan["python"], len(todo))
    if todo:
        partial = debs / ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        download = ["apt-get", *_apt_options(arch, cache_dir), "-qq", "download", *todo]
        doing = f"downloading {len(todo)} Debian {arch.debian} packages"
        try:
            _run(download, doing, cwd=partial)
        except DeviceError:          # lists older than the mirror's files: read them again
            log.info("emulated %s: the package lists are stale; reading them again", arch.name)
            _step_index(arch, cache_dir, plan, _record)
            _run(download, doing, cwd=partial)
        for f in partial.glob("*.deb"):
            os.replace(f, debs / f.name)
        shutil.rmtree(partial, ignore_errors=True)
    files = sorted(p.name for p in debs.glob("*.deb") if p.name.split("_", 1)[0] in wanted)
    missing = set(wanted) - {f.split("_", 1)[0] for f in files}
    if missing:
        raise DeviceError(f"Debian packages not downloaded: {', '.join(sorted(missing))}")
    return {"packages": files, "packages_bytes": sum((debs / f).stat().st_size for f in files)}


def _glibc_minor(packages: list[str]) -> int:
    libc = next((p for p in packages if p.startswith("libc6_")), None)
    m = re.match(r"libc6_(\d+)\.(\d+)", libc or "")
    if not m:
        raise DeviceError("the device's C library (libc6) was not downloaded")
    return int(m.group(2))


def _wheel_platforms(arch: EmulatedArch, glibc_minor: int) -> list[str]:
    m = arch.wheel_machine
    return [f"manylinux2014_{m}"] + [f"manylinux_2_{i}_{m}" for i in range(17, glibc_minor + 1)]


def _wheel_name(spec_name: str) -> str:
    return re.sub(r"[-_.]+", "_", spec_name).lower()


def _step_wheels(arch: EmulatedArch, cache_dir: Path, plan: dict, record: dict) -> dict:
    wheels = cache_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    specs = [f"{n}=={v}" if v else n for n, v in plan["wheels"].items()]
    log.info("emulated %s: wheels for the device from PyPI (%s; the TVM wheel is about 95 MB)",
             arch.name, ", ".join(specs))
    py = plan["python"].replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version",
           py, "-d", str(wheels)]
    for p in _wheel_platforms(arch, _glibc_minor(record["packages"])):
        cmd += ["--platform", p]
    _run(cmd + specs, f"pip download of the {arch.name} wheels")
    files = _match_wheels(wheels, plan["wheels"])
    return {"wheels": files, "wheels_bytes": sum((wheels / f).stat().st_size for f in files)}


def _match_wheels(wheels: Path, pins: dict) -> list[str]:
    found = []
    for name, version in pins.items():
        cands = sorted(p.name for p in wheels.glob("*.whl")
                       if p.name.lower().startswith(_wheel_name(name) + "-")
                       and (version is None or p.name.split("-")[1] == version))
        if not cands:
            raise DeviceError(f"no {name} wheel {version or ''} was downloaded for the device")
        found.append(cands[-1])
    return found


def _step_root(arch: EmulatedArch, cache_dir: Path, plan: dict, record: dict) -> dict:
    """Unpack into ``root.partial``, check it under the emulator, rename it to ``root``."""
    partial, final = cache_dir / "root.partial", cache_dir / "root"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    log.info("emulated %s: unpacking %d packages and %d wheels", arch.name,
             len(record["packages"]), len(record["wheels"]))
    for deb in record["packages"]:
        _run(["dpkg-deb", "-x", str(cache_dir / "debs" / deb), str(partial)], f"unpacking {deb}")
    _relative_symlinks(partial)
    site = partial / _SITE
    for whl in record["wheels"]:
        _unpack_wheel(cache_dir / "wheels" / whl, site)
    _write_device_files(arch, partial, plan)
    log.info("emulated %s: checking the root's Python under %s", arch.name, Path(plan["qemu"]).name)
    device = _check_root(arch, partial, plan)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    return {"device": device, "root_bytes": _size(final)}


_STEP_FUNCS = {"index": _step_index, "packages": _step_packages, "wheels": _step_wheels,
               "root": _step_root}


def _relative_symlinks(root: Path) -> None:
    """Absolute links inside the root would resolve on the host (the kernel follows them)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink() and os.readlink(p).startswith("/"):
                target = root / os.readlink(p).lstrip("/")
                p.unlink()
                p.symlink_to(os.path.relpath(target, p.parent))


def _unpack_wheel(whl: Path, site: Path) -> None:
    import zipfile

    with zipfile.ZipFile(whl) as zf:
        for info in zf.infolist():
            if info.filename.startswith(_RUNTIME_ONLY_SKIP):
                continue
            zf.extract(info, site)


def _write_device_files(arch: EmulatedArch, root: Path, plan: dict) -> None:
    from hwnas.farm import device_info

    site = root / _SITE
    atomic_write_text(site / "hwnas_device_info.py", Path(device_info.__file__).read_text())
    atomic_write_text(site / "hwnas_device_info.pth", device_info.PTH_LINE)
    emulator = _qemu_version(plan["qemu"])
    launcher = root / "usr" / "bin" / "python3"
    atomic_write_text(launcher, _LAUNCHER.format(arch=arch.name, qemu=plan["qemu"],
                                                 emulator=emulator, python=plan["python"]))
    launcher.chmod(0o755)


# The root's Python, run by qemu-user from any folder; relocatable (the root is found from
# this file's path). ``-0`` makes the launcher the guest's argv[0], hence its sys.executable:
# TVM's RPC server starts its workers with sys.executable, and without binfmt_misc the
# kernel cannot run an aarch64 binary directly.
_LAUNCHER = """\
#!/bin/sh
# The {arch} Python of this root under qemu-user (written by hwnas; see hwnas.farm.emulated_root)
root=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONSAFEPATH LD_LIBRARY_PATH LD_PRELOAD TVM_LIBRARY_PATH
export PYTHONNOUSERSITE=1 HWNAS_EMULATOR='{emulator}'
exec '{qemu}' -L "$root" -0 "$root/usr/bin/python3" "$root/usr/bin/python{python}" "$@"
"""

_CHECK = """\
import json, numpy, tvm, tvm.base, psutil, cloudpickle, hwnas_device_info
import tvm.exec.rpc_server
print(json.dumps({**hwnas_device_info.info(), "numpy": numpy.__version__,
                  "runtime_only": bool(tvm.base._RUNTIME_ONLY)}))
"""


def _check_root(arch: EmulatedArch, root: Path, plan: dict) -> dict:
    out = _run([str(root / "usr" / "bin" / "python3"), "-c", _CHECK],
               f"running the {arch.name} Python under {Path(plan['qemu']).name}", timeout_s=600)
    device = json.loads(out.strip().splitlines()[-1])
    want_tvm = plan["wheels"].get("apache-tvm")
    if device.get("machine") != arch.name or (want_tvm and device.get("tvm") != want_tvm):
        raise DeviceError(f"the emulated root reports machine {device.get('machine')} and TVM "
                          f"{device.get('tvm')}, expected {arch.name} and {want_tvm}")
    return device


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


# ---------------------------------------------------------------------------- entry point
def ensure_root(arch: str = "aarch64", cache_dir: str | os.PathLike | None = None) -> EmulatedRoot:
    """The finished root of ``arch`` in ``cache_dir`` (default ``default_cache_dir(arch)``),
    set up or completed first when needed; progress goes to the ``hwnas.farm`` logger."""
    spec = get_arch(arch)
    qemu = find_qemu(spec)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(spec.name)
    t0 = time.perf_counter()
    plan = setup_plan(spec, qemu)
    state = read_state(cache, plan)
    if not state.complete:
        with locked(cache):
            state = read_state(cache, plan)      # another process may have finished it
            if not state.complete:
                _complete(spec, cache, plan, state)
    record = json.loads((cache / STATE_FILE).read_text(encoding="utf-8"))
    root = EmulatedRoot(spec, cache, record.get("device", {}), time.perf_counter() - t0,
                        cached=state.complete)
    if not root.cached:
        log.info("emulated %s: ready in %.1f s: %s", spec.name, root.setup_s, root.describe())
    return root


def _complete(spec: EmulatedArch, cache: Path, plan: dict, state: SetupState) -> None:
    log.info("emulated %s device in %s: %s; setting it up from step '%s'", spec.name, cache,
             state.reason, state.next_step)
    done = list(state.done)
    save_state(cache, plan, done, {})
    for step in STEPS:
        if step in done:
            continue
        t0 = time.perf_counter()
        record = json.loads((cache / STATE_FILE).read_text(encoding="utf-8"))
        extra = _STEP_FUNCS[step](spec, cache, plan, record)
        done.append(step)
        seconds = {**record.get("seconds", {}), step: round(time.perf_counter() - t0, 1)}
        save_state(cache, plan, done, {**extra, "seconds": seconds})
        log.info("emulated %s: step %d/%d (%s) done in %.1f s", spec.name, STEPS.index(step) + 1,
                 len(STEPS), step, seconds[step])
