"""The space registry, kept apart so that space modules can import it without cycles."""
from hwnas._registry import Registry

__all__ = ["SPACES"]

SPACES: Registry = Registry("search space")
