"""Runtimes: where compiled operators and networks run and are timed (local TVM, TVM over RPC,
onnxruntime, and a compiler-free debug runtime for tests), behind one ``Runtime`` interface and
one measurement ``Protocol``. ``Latency`` is the value every measurement produces."""
from hwnas.runtime._base import RUNTIMES, Runtime, host_description, parse_address
from hwnas.runtime.connect import connect
from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol, run_protocol

__all__ = ["Runtime", "RUNTIMES", "connect", "Latency", "Protocol", "DEFAULT_PROTOCOL",
           "Measurement", "run_protocol", "host_description", "parse_address"]
