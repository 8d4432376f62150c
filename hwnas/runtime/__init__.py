"""Runtimes: where built operators and networks run and are timed (local TVM, TVM over RPC,
onnxruntime, and a compiler-free debug runtime for tests), behind one ``Runtime`` interface and
one measurement ``Protocol``. Each runtime kind is a ``Backend`` registered in ``RUNTIMES``:
it builds the artefacts its devices run and connects to a device. ``Latency`` is the value
every measurement produces."""
from hwnas.runtime._base import Runtime, host_description, parse_address
from hwnas.runtime.backend import RUNTIMES, Artefact, Backend
from hwnas.runtime.connect import backend_of, connect, runtime_names
from hwnas.runtime.latency import Latency
from hwnas.runtime.protocol import DEFAULT_PROTOCOL, Measurement, Protocol, run_protocol

__all__ = ["Runtime", "RUNTIMES", "Backend", "Artefact", "backend_of", "runtime_names",
           "connect", "Latency", "Protocol", "DEFAULT_PROTOCOL", "Measurement", "run_protocol",
           "host_description", "parse_address"]
