"""``gumbel``: FBNet's differentiable search, a Gumbel-softmax mixture over each layer's ops.

Loss (FBNet): ``CE · α · log(LAT)^β`` with ``LAT`` the expected latency under the softmax of
the architecture logits, read from the target's table. ``LAT`` is measured in units of
``budget / e`` (``e · E[lat] / budget``; the largest such ratio over budgeted targets) and
clamped at the budget, so the factor is ``α`` on or under the budget and grows above it. FBNet
penalises latency everywhere and so drifts far below a budget; here the hard constraint is the
budget, and below it only the cross-entropy moves the logits. The Gumbel temperature is
annealed geometrically from ``tau_start`` to ``tau_end``.

Architecture steps run the full soft mixture (every candidate of every layer). Weight steps
run one path per layer drawn from the current softmax: far cheaper on a CPU than FBNet's
weight training on the mixture, and it trains each candidate in proportion to its
probability. ``hard=True`` makes architecture steps straight-through too (one sampled path,
GDAS-style) for when even that is too slow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwnas.search._base import STRATEGIES
from hwnas.search._gradient import GradientStrategy, budget_ratio

if TYPE_CHECKING:
    import torch

__all__ = ["GumbelSearch"]


@STRATEGIES.register("gumbel")
class GumbelSearch(GradientStrategy):
    name = "gumbel"

    @dataclass
    class Options(GradientStrategy.Options):
        alpha: float = 0.2
        beta: float = 0.6
        tau_start: float = 5.0
        tau_end: float = 0.5
        hard: bool = False

    def configure(self, net, step: int, arch_step: bool) -> None:
        o = self.options
        if not arch_step:
            net.set_mode("binary", paths=1)
            return
        frac = step / max(o.steps - 1, 1)
        net.set_mode("gumbel_hard" if o.hard else "gumbel",
                     tau=o.tau_start * (o.tau_end / o.tau_start) ** frac)

    def arch_loss(self, ce, lat, problem) -> torch.Tensor:
        import torch

        o = self.options
        log_lat = torch.log(math.e * budget_ratio(lat, problem).clamp(min=1.0))
        return ce * o.alpha * log_lat ** o.beta
