"""Mixed candidate layers for gradient architecture search (FBNet and ProxylessNAS styles).

A ``MixedOp`` holds one layer's candidate modules (``None`` = skip: the identity) and their
architecture logits ``alpha``. Its ``mode`` says how ``forward`` combines them:

* ``"gumbel"`` (FBNet): a Gumbel-softmax sample of weights at temperature ``tau``; every
  candidate runs and the outputs are summed with those weights.
* ``"gumbel_hard"``: the straight-through variant (GDAS): one Gumbel sample is drawn, only
  the chosen candidate runs, and its output is scaled by the hard weight (value 1) whose
  gradient is that of the soft weight.
* ``"binary"`` (ProxylessNAS): ``paths`` candidates (1 or 2) are drawn from ``softmax(alpha)``
  and one of them is made active by a binary gate ``g``. The output is ``Σ g_j · o_j(x)``
  with ``g = onehot + p − p.detach()``, so its value is the active path alone while
  ``∂L/∂α_i = Σ_j ∂L/∂g_j · p_j (δ_ij − p_i)``, ProxylessNAS's estimator. With one path no
  gradient reaches ``alpha`` (weight steps).
* ``"fixed"``: only candidate ``choice`` runs (evaluation of the derived arch).

``MixedNet`` chains fixed prefix modules, the mixed layers and fixed suffix modules.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MixedOp", "MixedNet", "ElasticChoice"]

MODES = ("gumbel", "gumbel_hard", "binary", "fixed")


class ElasticChoice(nn.Module):
    """One (kernel, expand) setting of a shared elastic block: candidates that share weights."""

    def __init__(self, block: nn.Module, kernel: int, expand: int) -> None:
        super().__init__()
        self.block, self.kernel, self.expand = block, kernel, expand

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.block.set_active(self.kernel, self.expand)
        return self.block(x)


class MixedOp(nn.Module):
    def __init__(self, candidates: Sequence[nn.Module | None]) -> None:
        super().__init__()
        if not candidates:
            raise ValueError("a mixed op needs at least one candidate")
        self.ops = nn.ModuleList(nn.Identity() if c is None else c for c in candidates)
        self.alpha = nn.Parameter(torch.zeros(len(candidates)))
        self.mode, self.tau, self.paths, self.choice = "gumbel", 1.0, 2, 0

    def probs(self) -> torch.Tensor:
        return F.softmax(self.alpha, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "fixed":
            return self.ops[self.choice](x)
        if self.mode == "gumbel":
            w = F.gumbel_softmax(self.alpha, tau=self.tau, hard=False)
            return sum(w[i] * op(x) for i, op in enumerate(self.ops))
        if self.mode == "gumbel_hard":
            w = F.gumbel_softmax(self.alpha, tau=self.tau, hard=True)
            i = int(w.detach().argmax())
            return w[i] * self.ops[i](x)
        return self._binary(x)

    def _binary(self, x: torch.Tensor) -> torch.Tensor:
        p_all = self.probs()
        n = min(self.paths, len(self.ops))
        idx = torch.multinomial(p_all.detach(), n, replacement=False)
        if n == 1:
            return self.ops[int(idx)](x)
        p = F.softmax(self.alpha[idx], dim=0)                 # renormalised over the drawn paths
        active = int(torch.multinomial(p.detach(), 1))
        gate = F.one_hot(torch.tensor(active), n).to(p) + p - p.detach()
        return sum(gate[j] * self.ops[int(i)](x) for j, i in enumerate(idx))


class MixedNet(nn.Module):
    """prefix → mixed layers → suffix; ``alphas()`` and ``weights()`` split the parameters."""

    def __init__(self, prefix: Sequence[nn.Module], layers: Sequence[MixedOp],
                 suffix: Sequence[nn.Module]) -> None:
        super().__init__()
        self.prefix = nn.Sequential(*prefix)
        self.layers = nn.ModuleList(layers)
        self.suffix = nn.Sequential(*suffix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prefix(x)
        for layer in self.layers:
            x = layer(x)
        return self.suffix(x)

    def set_mode(self, mode: str, tau: float | None = None, paths: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mixed-op mode '{mode}'; choose from {MODES}")
        for layer in self.layers:
            layer.mode = mode
            if tau is not None:
                layer.tau = tau
            if paths is not None:
                layer.paths = paths

    def set_choice(self, choice: Sequence[int]) -> None:
        self.set_mode("fixed")
        for layer, c in zip(self.layers, choice):
            layer.choice = int(c)

    def alphas(self) -> list[nn.Parameter]:
        return [layer.alpha for layer in self.layers]

    def weights(self) -> list[nn.Parameter]:
        ids = {id(a) for a in self.alphas()}
        return [p for p in self.parameters() if id(p) not in ids]

    def probs(self) -> list[torch.Tensor]:
        return [layer.probs() for layer in self.layers]

    def argmax(self) -> list[int]:
        return [int(layer.alpha.argmax()) for layer in self.layers]
