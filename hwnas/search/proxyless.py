"""``proxyless``: ProxylessNAS's binarized-path search with an expected-latency loss.

Weight steps run one path per layer, drawn from the softmax of the architecture logits.
Architecture steps run two drawn paths with a binary gate (``hwnas.nn.mixed_ops``), whose
gradient estimates that of the logits. The latency term is ProxylessNAS's linear one,
``λ · (E[lat] − budget) / budget`` summed over the budgeted targets, with ``E[lat]`` from the
targets' tables, but hinged at the budget (no pull below it; the hard constraint holds the
budget, so under it only accuracy moves the logits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwnas.search._base import STRATEGIES
from hwnas.search._gradient import GradientStrategy

if TYPE_CHECKING:
    import torch

__all__ = ["ProxylessSearch"]


@STRATEGIES.register("proxyless")
class ProxylessSearch(GradientStrategy):
    name = "proxyless"

    @dataclass
    class Options(GradientStrategy.Options):
        latency_lambda: float = 0.1
        arch_paths: int = 2

    def configure(self, net, step: int, arch_step: bool) -> None:
        net.set_mode("binary", paths=self.options.arch_paths if arch_step else 1)

    def arch_loss(self, ce, lat, problem) -> torch.Tensor:
        import torch

        lam = self.options.latency_lambda
        reg = sum(torch.relu((lat[b.target] - b.budget_ms) / b.budget_ms)
                  for b in problem.constraints.latency)
        return ce + lam * reg
