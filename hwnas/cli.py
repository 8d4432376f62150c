"""hwnas: profile a device, search under a latency budget, export and deploy with Apache TVM.

Each verb is a module in ``hwnas.commands`` with ``register(subparsers)``.

Exit codes: 0 done; 2 bad input (an ``HwnasError``, or a path the system refused); 3 an
unreachable or lost device (``DeviceError``); 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM, handled like Ctrl-C: temporary folders removed, finished work kept); 1 only for a
bug. Each error is one line on stderr; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from hwnas.errors import HwnasError

__all__ = ["main", "build_parser"]

log = logging.getLogger("hwnas")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line like every other error (usage: ``--help``)."""

    def error(self, message: str):
        print(f"hwnas: error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    import hwnas.commands as commands

    parser = _Parser(prog="hwnas", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<verb>", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"hwnas.commands.{info.name}").register(sub)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that the same cleanup runs."""


def _on_sigterm(_signum, _frame) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    parser = build_parser()
    args = parser.parse_args(argv)
    here = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if here else None
    try:
        return _run(args)
    finally:
        if here:
            signal.signal(signal.SIGTERM, old)


def _run(args) -> int:
    from hwnas._log import setup_logging

    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except HwnasError as exc:
        if args.debug:
            raise
        one_line = " ".join(str(exc).splitlines())      # a message that quotes user text
        print(f"hwnas: error: {one_line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        how = "terminated (SIGTERM)" if isinstance(exc, _Terminated) else "interrupted"
        print(f"hwnas: {how}; finished work is saved (use --resume where offered)",
              file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    except OSError as exc:            # the environment refused: a path, a permission, a disk
        if args.debug:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"hwnas: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:          # noqa: BLE001  (anything else is a bug in hwnas)
        if args.debug:
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"hwnas: internal error: {type(exc).__name__}: {first} (a bug in hwnas; "
              f"--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
