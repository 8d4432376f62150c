"""``hwnas farm``: a local TVM RPC device farm (TVM's own tracker and servers) for tests and
demos, and the state of any tracker."""
from __future__ import annotations

import logging
import signal
import time

from hwnas import api
from hwnas.errors import DeviceError, TargetError

__all__ = ["register", "run"]

log = logging.getLogger("hwnas.farm")


def register(sub) -> None:
    p = sub.add_parser("farm", help="start a local TVM RPC tracker with N servers, or show a "
                                    "tracker's devices")
    verbs = p.add_subparsers(dest="farm_verb", metavar="<up|status>", required=True)
    up = verbs.add_parser("up", help="start a tracker and N RPC servers on 127.0.0.1 and stay in "
                                     "the foreground until Ctrl-C or SIGTERM")
    up.add_argument("--servers", type=int, default=2, help="RPC servers per key (default 2)")
    up.add_argument("--key", action="append", required=True,
                    help="device key the servers register under; repeat for several keys")
    up.add_argument("--port", type=int, default=9190,
                    help="tracker port (default 9190; 0: any free port)")
    up.add_argument("--log-dir", help="write the tracker's and servers' logs here")
    st = verbs.add_parser("status", help="free and pending devices per key at a tracker")
    st.add_argument("--tracker", required=True, metavar="HOST:PORT")
    p.set_defaults(func=run)


def _raise_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt


def _up(args) -> int:
    t0 = time.perf_counter()
    farm = api.start_farm(args.servers, args.key, args.port, args.log_dir)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    died = None
    try:
        print(f"tracker    {farm.address}")
        for key in farm.keys:
            addrs = ", ".join(s.address for s in farm.servers if s.key == key)
            print(f"servers    {args.servers} under key '{key}': {addrs}")
        print(f"ready      in {time.perf_counter() - t0:.1f} s; Ctrl-C or SIGTERM stops the farm")
        key = farm.keys[0]                  # a key named like a target profiles that target
        target = "" if key in api.list_targets() else " --target x86-host"
        print(f"use        hwnas profile --tracker {farm.address} --key {key}{target} ...",
              flush=True)
        died = _watch(farm)
    except KeyboardInterrupt:
        pass
    finally:
        farm.stop()
        signal.signal(signal.SIGTERM, previous)
    print("stopped    tracker and servers", flush=True)
    if died is not None:
        raise DeviceError(f"the RPC tracker on {farm.address} exited with status {died}; "
                          f"the farm was stopped")
    return 0


def _watch(farm) -> int:
    """Stay in the foreground; say once when a server exits (it is not restarted). Returns the
    tracker's exit status if the tracker dies."""
    reported: set[int] = set()
    while True:
        for s in farm.servers:
            if not s.alive and s.port not in reported:
                reported.add(s.port)
                log.warning("RPC server %s (key %s) exited with status %s", s.address, s.key,
                            s.proc.returncode)
        if farm.tracker.poll() is not None:
            return farm.tracker.returncode
        time.sleep(1.0)


def _status(args) -> int:
    from hwnas.runtime import parse_address

    parse_address(args.tracker, "--tracker")        # the flag's own words
    status = api.tracker_status(args.tracker)
    print(f"tracker    {status['tracker']}")
    for key, k in status["keys"].items():
        addrs = ", ".join(k["servers"]) or "-"
        print(f"key        {key}: {len(k['servers'])} servers, {k['free']} free, "
              f"{k['pending']} requests waiting; {addrs}")
    return 0


def run(args) -> int:
    if args.farm_verb == "up":
        if args.servers < 1:
            raise TargetError(f"--servers must be at least 1, got {args.servers}")
        return _up(args)
    return _status(args)
