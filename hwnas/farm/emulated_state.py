"""How far an emulated root's setup got: the record of finished steps, and the cache's lock.

``setup.json`` in the cache names the plan (what the root is built from) and the steps done
under it. A step whose inputs in the plan changed is not done any more, nor is any step after
it; a root is complete only when every step is done and the finished root is in place.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hwnas._io import atomic_write_json

__all__ = ["STEPS", "STATE_FILE", "LOCK_FILE", "SetupState", "read_state", "save_state",
           "locked", "hold_root"]

log = logging.getLogger("hwnas.farm")

STEPS = ("index", "packages", "wheels", "root")
STATE_FILE = "setup.json"
LOCK_FILE = ".lock"
LAUNCHER = ("root", "usr", "bin", "python3")      # in the cache: there once the root is


@dataclass(frozen=True)
class SetupState:
    """How far a cache's setup got under the current plan."""

    complete: bool
    done: tuple[str, ...] = ()
    reason: str = ""                    # why it is not complete (empty when it is)

    @property
    def next_step(self) -> str | None:
        return next((s for s in STEPS if s not in self.done), None)


#: the plan entries each step's result depends on
_STEP_INPUTS = {"index": ("format", "arch", "debian"),
                "packages": ("format", "arch", "debian", "python"),
                "wheels": ("format", "arch", "debian", "python", "wheels"),
                "root": ("format", "arch", "debian", "python", "wheels", "qemu", "device_files")}


def read_state(cache_dir: Path, plan: dict) -> SetupState:
    """The steps of ``plan`` done in ``cache_dir``: those recorded done whose inputs are
    unchanged, up to the first that is not; complete only with the finished root in place."""
    cache_dir = Path(cache_dir)
    path = cache_dir / STATE_FILE
    if not path.exists():
        partial = (cache_dir / "root.partial").exists() or (cache_dir / "root").exists()
        return SetupState(False, (), "a half-built root without a record" if partial
                          else "not set up yet")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return SetupState(False, (), f"{path} is unreadable")
    if not isinstance(state, dict):
        return SetupState(False, (), f"{path} holds no setup record")
    old = state.get("plan") if isinstance(state.get("plan"), dict) else {}
    recorded = state.get("done", [])
    done: list[str] = []
    for step in STEPS:
        if step not in recorded or any(old.get(k) != plan.get(k) for k in _STEP_INPUTS[step]):
            break
        done.append(step)
    if "root" in done and not cache_dir.joinpath(*LAUNCHER).is_file():
        return SetupState(False, tuple(done[:-1]), "the finished root is missing")
    if len(done) == len(STEPS) and state.get("complete"):
        return SetupState(True, tuple(done))
    if len(done) < len([s for s in STEPS if s in recorded]):
        return SetupState(False, tuple(done), plan_change(old, plan))
    return SetupState(False, tuple(done), f"half-built (steps done: {', '.join(done) or 'none'})")


def plan_change(old: dict, new: dict) -> str:
    for key in new:
        if old.get(key) != new[key]:
            if key == "wheels" and isinstance(old.get(key), dict):
                name = next(n for n in new[key] if old[key].get(n) != new[key][n])
                return f"the device's {name} changes from {old[key].get(name)} to {new[key][name]}"
            return f"its {key} changes from {old.get(key)} to {new[key]}"
    return "the plan changed"


def save_state(cache_dir: Path, plan: dict, done: list[str], extra: dict) -> None:
    path = cache_dir / STATE_FILE
    try:
        old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        old = {}
    record = {**(old if isinstance(old, dict) else {}), **extra,
              "plan": plan, "done": [s for s in STEPS if s in done],
              "complete": all(s in done for s in STEPS)}
    atomic_write_json(path, record)


@contextmanager
def locked(cache_dir: Path) -> Iterator[None]:
    """One setup per cache at a time, and none while a device runs from the root (its server
    holds the lock shared, ``hold_root``): another process waits, then finds it done."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / LOCK_FILE, "w") as fh:  # noqa: PTH123
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another setup of %s, or the emulated devices running from it, "
                     "to finish", cache_dir)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def hold_root(cache_dir: Path) -> int:
    """A file descriptor holding the cache's lock shared: give it to a process that runs from
    its root (``pass_fds``) and close it here; no setup replaces the root until that process
    has exited."""
    fd = os.open(Path(cache_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return fd
