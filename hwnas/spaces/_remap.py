"""Genome rows of one configuration of a space carried into another configuration of it."""
from __future__ import annotations

import numpy as np

from hwnas.errors import SpaceError

__all__ = ["GenomeRemap"]


class GenomeRemap:
    """Map genome rows of ``src`` onto ``dst`` (same space family, resolution in the last gene).

    Every gene but the resolution is kept. The resolution maps ``by="value"`` (the same input
    size, which ``dst`` must have: latency tables) or ``by="relative"`` (the nearest relative
    place in each range: a model fitted at other resolutions, a proxy)."""

    def __init__(self, src, dst, by: str = "value") -> None:
        self.identity = src.config() == dst.config()
        if self.identity:
            return
        if src.name != dst.name or len(src.choice_sizes()) != len(dst.choice_sizes()):
            raise SpaceError(f"cannot map '{src.name}' genomes onto '{dst.name}'")
        if by == "value":
            missing = [r for r in src.resolutions if r not in dst.resolutions]
            if missing:
                raise SpaceError(f"resolution {missing[0]} of the search space is not in "
                                 f"{dst.name} {list(dst.resolutions)}")
            self._r = np.array([dst.resolutions.index(r) for r in src.resolutions], np.int16)
        else:  # relative place of r in each range, nearest neighbour
            s, d = np.asarray(src.resolutions, float), np.asarray(dst.resolutions, float)
            rel_s = (s - s[0]) / max(s[-1] - s[0], 1)
            rel_d = (d - d[0]) / max(d[-1] - d[0], 1)
            self._r = np.abs(rel_s[:, None] - rel_d[None, :]).argmin(1).astype(np.int16)

    def __call__(self, genomes: np.ndarray) -> np.ndarray:
        if self.identity:
            return genomes
        g = genomes.copy()
        g[:, -1] = self._r[genomes[:, -1]]
        return g
