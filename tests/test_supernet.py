"""The elastic supernet: extraction equals the active supernet, kernels, channel sorting."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.errors import ArchError
from hwnas.nn.supernet import OFASupernet
from hwnas.spaces import get_space


@pytest.fixture(scope="module")
def space():
    return get_space("ofa-mbv3", width_mult=0.5, resolutions=[12, 16], in_chans=1, num_classes=7)


def _perturbed(space, seed: int = 0) -> OFASupernet:
    """A supernet whose BN stats and kernel transforms are not at their initial values."""
    torch.manual_seed(seed)
    net = OFASupernet(space)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
        for name, p in net.named_parameters():
            if "transform" in name:
                p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _archs(space):
    rng = np.random.default_rng(3)
    return [space.largest(), space.smallest()] + space.sample_many(rng, 4)


def test_extracted_subnet_equals_active_supernet(space):
    net = _perturbed(space)
    for arch in _archs(space):
        net.set_active_subnet(arch)
        x = torch.randn(4, 1, arch.r, arch.r)
        with torch.no_grad():
            expected = net(x)
            sub = net.get_active_subnet(arch).eval()
            got = sub(x)
        assert got.shape == (4, 7)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_extracted_subnet_has_the_structure_of_space_build(space):
    net = _perturbed(space)
    arch = space.sample(np.random.default_rng(1))
    sub = net.get_active_subnet(arch)
    ref = space.build(arch)
    ref.load_state_dict(sub.state_dict())                  # strict: same names and shapes
    x = torch.randn(2, 1, arch.r, arch.r)
    with torch.no_grad():
        torch.testing.assert_close(ref.eval()(x), sub.eval()(x))
    assert type(sub) is type(ref)


def test_smaller_kernel_starts_as_centre_crop(space):
    net = OFASupernet(space)
    dw = net.blocks[0].dw
    full = dw.conv.weight[:8]
    torch.testing.assert_close(dw.active_weight(8, 5), full[:, :, 1:6, 1:6])
    torch.testing.assert_close(dw.active_weight(8, 3), full[:, :, 2:5, 2:5])
    with torch.no_grad():
        dw.transform_5to3.mul_(2.0)
    torch.testing.assert_close(dw.active_weight(8, 3), 2 * full[:, :, 2:5, 2:5])


def test_sort_channels_keeps_the_largest_subnet_and_moves_momentum(space):
    net = _perturbed(space).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for p in net.parameters():                             # momentum that mirrors the weights
        opt.state[p]["momentum_buffer"] = p.detach().clone()
    net.set_active_subnet(space.largest())
    net.eval()
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        before = net(x)
    block = net.blocks[5]
    imp_before = block.project.conv.weight.abs().sum((0, 2, 3))
    net.sort_channels(opt)
    with torch.no_grad():
        torch.testing.assert_close(net(x), before, rtol=1e-4, atol=1e-5)
    imp = block.project.conv.weight.abs().sum((0, 2, 3))
    assert torch.all(imp[:-1] >= imp[1:])                  # most important first
    assert not torch.equal(imp, imp_before)
    for p in net.parameters():
        torch.testing.assert_close(opt.state[p]["momentum_buffer"], p.detach())


def test_set_active_subnet_rejects_archs_outside_the_space(space):
    net = OFASupernet(space)
    bad = get_space("ofa-mbv3", resolutions=[20], in_chans=1).smallest()
    with pytest.raises(ArchError, match="resolution 20"):
        net.set_active_subnet(bad)


def test_depth_runs_the_first_blocks_of_each_stage(space):
    net = OFASupernet(space)
    arch = space.smallest()
    net.set_active_subnet(arch)
    assert net.active_indices() == [0, 1, 4, 5, 8, 9, 12, 13, 16, 17]
