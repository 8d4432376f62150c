"""``hwnas device emulate``: a device of another architecture on this machine (qemu-user), served
over TVM RPC, for when there is no such device at hand. Its timings are the emulator's."""
from __future__ import annotations

import signal
import time

from hwnas import api

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("device", help="emulated devices: another architecture under qemu-user, "
                                      "served over TVM RPC")
    verbs = p.add_subparsers(dest="device_verb", metavar="<emulate>", required=True)
    em = verbs.add_parser(
        "emulate", help="set up (once, cached) and serve an emulated device over TVM RPC until "
                        "Ctrl-C or SIGTERM",
        description="Serve TVM's RPC server from an emulated root (Debian's Python and TVM's "
                    "runtime for the architecture, run by qemu-user). The first run downloads "
                    "about 150 MB (Debian packages and PyPI wheels) into the cache. Latencies "
                    "measured through it are the emulator's: tables and bundles say so, and "
                    "search and deploy use them only with --allow-emulated.")
    em.add_argument("--arch", default="aarch64",
                    help=f"architecture: {', '.join(api.list_emulated_arches())} (default aarch64)")
    em.add_argument("--port", type=int, default=9090,
                    help="RPC server port (default 9090; 0: any free port)")
    em.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    em.add_argument("--tracker", metavar="HOST:PORT", help="register at this TVM RPC tracker")
    em.add_argument("--key", help="device key to register under (with --tracker)")
    em.add_argument("--cache", metavar="DIR",
                    help="where the root is set up (default $HWNAS_CACHE/emulated/<arch> or "
                         "~/.cache/hwnas/emulated/<arch>)")
    em.add_argument("--log", metavar="FILE", help="write the RPC server's log here")
    em.add_argument("--setup-only", action="store_true",
                    help="set the root up (or check it) and exit without serving")
    p.set_defaults(func=run)


def _raise_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt


def _emulate(args) -> int:
    from hwnas._checks import check_int
    from hwnas.errors import TargetError
    from hwnas.runtime import parse_address

    # every option checked before anything is downloaded (the flags' own words; the front
    # door checks them again under its parameters' names)
    api.emulated_arch(args.arch)
    check_int(args.port, "--port", 0, 65535, TargetError)
    if bool(args.tracker) != bool(args.key):
        raise TargetError("--tracker and --key go together")
    if args.tracker:
        parse_address(args.tracker, "--tracker")
    t0 = time.perf_counter()
    arch, root = api.setup_emulated_device(args.arch, args.cache, port=args.port,
                                           tracker=args.tracker, key=args.key)
    print(f"device     {root.describe()}")
    print(f"root       {root.path} ({'cached' if root.cached else 'set up'} in "
          f"{root.setup_s:.1f} s)")
    print(f"python     {root.python} (the device's Python: cd bundle && {root.python} run.py)")
    if args.setup_only:
        return 0
    device = api.serve_emulated_device(arch.name, args.port, host=args.host,
                                       tracker=args.tracker, key=args.key, cache=args.cache,
                                       log=args.log)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        where = f"; key '{args.key}' at tracker {args.tracker}" if args.tracker else ""
        print(f"server     {device.address}{where}")
        print(f"ready      in {time.perf_counter() - t0:.1f} s; Ctrl-C or SIGTERM stops it")
        reach = (f"--tracker {args.tracker} --key {args.key}" if args.tracker
                 else f"--rpc {device.address}")
        print(f"use        hwnas profile --target {arch.targets[0]} {reach} ...; search and "
              f"deploy need --allow-emulated (timings are the emulator's)", flush=True)
        while device.alive:
            time.sleep(1.0)
        print(f"stopped    the RPC server exited with status {device.proc.returncode}",
              flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()
        signal.signal(signal.SIGTERM, previous)
    print("stopped    emulated device", flush=True)
    return 0


def run(args) -> int:
    return _emulate(args)
