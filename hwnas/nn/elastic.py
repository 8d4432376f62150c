"""Elastic layers: one max-size weight tensor, sliced to the active subnet (Once-for-All).

* kernel: the centre crop of the 7×7 depthwise kernel, passed through small learned
  transform matrices (7→5 then 5→3, identity at init, shared by all channels of a layer);
* expand: the first ``mid`` channels of the expand conv, its BN, the depthwise conv, the SE
  and the project conv's inputs. ``sort_channels`` puts the most important channels first so
  that shrinking keeps them;
* depth and resolution are handled by the network (``hwnas.nn.supernet``).

Each elastic block can ``export`` itself into the plain ``InvertedResidual`` that
``space.build(arch)`` makes, with the active weights copied.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.nn.blocks import InvertedResidual, make_act, make_divisible

__all__ = ["ElasticConvBN", "ElasticDepthwiseBN", "ElasticSE", "ElasticInvertedResidual",
           "sliced_batch_norm"]


def sliced_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """BN over the first ``x.shape[1]`` features; running stats update in place (views)."""
    c = x.shape[1]
    if c == bn.num_features:
        return bn(x)
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:                       # cumulative average, as nn.BatchNorm2d
            momentum = 1.0 / float(bn.num_batches_tracked)
    use_batch = bn.training or not bn.track_running_stats
    return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                        use_batch, momentum, bn.eps)


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, c: int) -> None:
    dst.weight.copy_(src.weight[:c])
    dst.bias.copy_(src.bias[:c])
    dst.running_mean.copy_(src.running_mean[:c])
    dst.running_var.copy_(src.running_var[:c])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


class ElasticConvBN(nn.Module):
    """1×1 conv → BN → act with elastic input (``x.shape[1]``) and output channels."""

    def __init__(self, in_chs: int, out_chs: int, act: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor, out_chs: int) -> torch.Tensor:
        w = self.conv.weight[:out_chs, :x.shape[1]]
        return self.act(sliced_batch_norm(self.bn, F.conv2d(x, w)))

    @torch.no_grad()
    def export(self, dst: nn.Sequential, in_chs: int, out_chs: int) -> None:
        """Copy into a static ``ConvBNAct`` (``dst[0]`` conv, ``dst[1]`` BN)."""
        dst[0].weight.copy_(self.conv.weight[:out_chs, :in_chs])
        _copy_bn(dst[1], self.bn, out_chs)


class ElasticDepthwiseBN(nn.Module):
    """k×k depthwise conv → BN → act with elastic channels and kernel size."""

    def __init__(self, chs: int, kernels: tuple[int, ...], stride: int, act: str) -> None:
        super().__init__()
        self.kernels = tuple(sorted(kernels))
        kmax = self.kernels[-1]
        self.stride = stride
        self.conv = nn.Conv2d(chs, chs, kmax, stride, kmax // 2, groups=chs, bias=False)
        self.bn = nn.BatchNorm2d(chs)
        self.act = make_act(act)
        for big, small in zip(self.kernels[:0:-1], self.kernels[-2::-1]):
            # identity at init: the smaller kernel starts as the plain centre crop
            self.register_parameter(f"transform_{big}to{small}",
                                    nn.Parameter(torch.eye(small * small)))

    def active_weight(self, chs: int, kernel: int) -> torch.Tensor:
        """(chs, 1, k, k): centre crops chained through the transform matrices."""
        w = self.conv.weight[:chs]
        size = self.kernels[-1]
        for small in self.kernels[-2::-1]:
            if small < kernel:
                break
            lo = (size - small) // 2
            crop = w[:, :, lo:lo + small, lo:lo + small].reshape(chs, small * small)
            w = F.linear(crop, getattr(self, f"transform_{size}to{small}")).view(chs, 1, small, small)
            size = small
        return w

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        c = x.shape[1]
        y = F.conv2d(x, self.active_weight(c, kernel), None, self.stride, kernel // 2, 1, c)
        return self.act(sliced_batch_norm(self.bn, y))

    @torch.no_grad()
    def export(self, dst: nn.Sequential, chs: int, kernel: int) -> None:
        dst[0].weight.copy_(self.active_weight(chs, kernel))
        _copy_bn(dst[1], self.bn, chs)


class ElasticSE(nn.Module):
    """Squeeze-excite over the first ``x.shape[1]`` channels; its bottleneck shrinks with it."""

    def __init__(self, chs: int, reduction: int = 4) -> None:
        super().__init__()
        self.reduction = reduction
        mid = make_divisible(chs // reduction)
        self.reduce = nn.Conv2d(chs, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        m = make_divisible(c // self.reduction)
        s = x.mean((2, 3), keepdim=True)                      # N,C,1,1
        s = F.relu(F.conv2d(s, self.reduce.weight[:m, :c], self.reduce.bias[:m]))
        return x * F.hardsigmoid(F.conv2d(s, self.expand.weight[:c, :m], self.expand.bias[:c]))

    @torch.no_grad()
    def export(self, dst: nn.Module, chs: int) -> None:
        m = make_divisible(chs // self.reduction)
        dst.reduce.weight.copy_(self.reduce.weight[:m, :chs])
        dst.reduce.bias.copy_(self.reduce.bias[:m])
        dst.expand.weight.copy_(self.expand.weight[:chs, :m])
        dst.expand.bias.copy_(self.expand.bias[:chs])


def _permute(t: torch.Tensor, dim: int, order: torch.Tensor, opt_state: dict | None) -> None:
    """Reorder ``t`` along ``dim`` in place, and the optimizer's per-parameter buffers with it."""
    t.data.copy_(t.data.index_select(dim, order))
    for buf in (opt_state or {}).get(t, {}).values():
        if torch.is_tensor(buf) and buf.shape == t.shape:
            buf.copy_(buf.index_select(dim, order))


class ElasticInvertedResidual(nn.Module):
    """MBConv with elastic kernel and expand ratio; ``in_chs``/``out_chs`` are fixed per slot."""

    def __init__(self, in_chs: int, out_chs: int, kernels: tuple[int, ...],
                 expands: tuple[int, ...], stride: int, act: str, use_se: bool) -> None:
        super().__init__()
        self.in_chs, self.out_chs, self.stride, self.act_name = in_chs, out_chs, stride, act
        self.kernels, self.expands, self.use_se = tuple(kernels), tuple(expands), use_se
        self.max_mid = self.mid_for(max(expands))
        self.has_residual = stride == 1 and in_chs == out_chs
        self.expand = ElasticConvBN(in_chs, self.max_mid, act)
        self.dw = ElasticDepthwiseBN(self.max_mid, self.kernels, stride, act)
        self.se = ElasticSE(self.max_mid) if use_se else None
        self.project = ElasticConvBN(self.max_mid, out_chs, "none")
        self.active_kernel, self.active_mid = max(kernels), self.max_mid

    def mid_for(self, expand: int) -> int:
        """Hidden width at expand ratio ``expand`` (the rule ``space.block_configs`` uses)."""
        return make_divisible(round(self.in_chs * expand))

    def set_active(self, kernel: int, expand: int) -> None:
        self.active_kernel, self.active_mid = kernel, self.mid_for(expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.expand(x, self.active_mid), self.active_kernel)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y, self.out_chs)
        return x + y if self.has_residual else y

    def build_static(self) -> InvertedResidual:
        """The plain block for the active setting, with the active weights copied in."""
        mid, k = self.active_mid, self.active_kernel
        block = InvertedResidual(self.in_chs, self.out_chs, mid, k, self.stride, self.act_name,
                                 self.use_se)
        self.expand.export(block.expand, self.in_chs, mid)
        self.dw.export(block.dw, mid, k)
        if self.se is not None:
            self.se.export(block.se, mid)
        self.project.export(block.project, mid, self.out_chs)
        return block

    @torch.no_grad()
    def sort_channels(self, opt_state: dict | None = None) -> None:
        """Most important hidden channels first (L1 norm of the project conv's input weights).

        A permutation of the hidden channels leaves the full block's function unchanged; the
        optimizer's momentum buffers are permuted with their parameters.
        """
        order = self.project.conv.weight.abs().sum((0, 2, 3)).argsort(descending=True)
        ex, dw = self.expand, self.dw
        for t in (ex.conv.weight, ex.bn.weight, ex.bn.bias, dw.conv.weight, dw.bn.weight, dw.bn.bias):
            _permute(t, 0, order, opt_state)
        for t in (ex.bn.running_mean, ex.bn.running_var, dw.bn.running_mean, dw.bn.running_var):
            t.copy_(t.index_select(0, order))
        _permute(self.project.conv.weight, 1, order, opt_state)
        if self.se is not None:
            se = self.se
            _permute(se.reduce.weight, 1, order, opt_state)
            _permute(se.expand.weight, 0, order, opt_state)
            _permute(se.expand.bias, 0, order, opt_state)
            inner = se.expand.weight.abs().sum((0, 2, 3)).argsort(descending=True)
            _permute(se.reduce.weight, 0, inner, opt_state)
            _permute(se.reduce.bias, 0, inner, opt_state)
            _permute(se.expand.weight, 1, inner, opt_state)
