"""hwnas: hardware-aware neural architecture search, compiled with Apache TVM."""
from hwnas import _cpus  # noqa: F401  (records the CPU mask before anything pins a thread)
from hwnas.errors import HwnasError
from hwnas.spaces import OpSpec, SearchSpace, get_space
from hwnas.targets import Target, load_target

__version__ = "0.1.0"
__all__ = ["HwnasError", "OpSpec", "SearchSpace", "get_space", "Target", "load_target",
           "__version__"]
