"""Runtimes: where compiled operators and networks run and are timed (local TVM, TVM over RPC,
onnxruntime), behind one ``Runtime`` interface and one measurement ``Protocol``."""
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol, run_protocol
from hwnas.runtime._base import RUNTIMES, Runtime, connect, host_description, parse_address

__all__ = ["Runtime", "RUNTIMES", "connect", "Protocol", "DEFAULT_PROTOCOL", "Measurement",
           "run_protocol", "host_description", "parse_address"]
