# Copyright (c) mmuld contributors. All rights reserved.
import pytest
import torch

from mmuld.models.heads import ULDDescriptorHead, ULDDetectorHead
from mmuld.registry import MODELS


def test_detector_head_shapes_and_init():
    head = MODELS.build(
        dict(type='ULDDetectorHead', in_channels=16, feat_channels=8))
    assert isinstance(head, ULDDetectorHead)
    head.init_weights()
    assert torch.allclose(head.final_layer.bias, torch.tensor([-2.0]))
    feats = torch.randn(2, 16, 12, 10)
    out = head((feats, ))
    assert out.shape == (2, 1, 12, 10)
    assert torch.equal(head(feats), out)  # tensor input accepted
    out.sum().backward()
    assert head.conv_layers[0].conv.weight.grad is not None
    head0 = ULDDetectorHead(in_channels=16, num_convs=0)
    assert head0(feats).shape == (2, 1, 12, 10)


def test_descriptor_head_unit_norm():
    torch.manual_seed(0)
    head = MODELS.build(
        dict(type='ULDDescriptorHead', in_channels=16, desc_dim=32,
             feat_channels=8, num_convs=1))
    assert isinstance(head, ULDDescriptorHead)
    head.init_weights()
    out = head([torch.randn(3, 8, 4, 4), torch.randn(3, 16, 6, 6)])
    assert out.shape == (3, 32, 6, 6)
    assert torch.allclose(out.norm(dim=1), torch.ones(3, 6, 6), atol=1e-5)


def test_heads_bad_input():
    head = ULDDetectorHead(in_channels=16)
    with pytest.raises(ValueError, match='in_channels|expects'):
        head(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match='expects'):
        head(())
    with pytest.raises(ValueError, match='desc_dim'):
        ULDDescriptorHead(in_channels=4, desc_dim=0)
    with pytest.raises(ValueError, match='in_channels'):
        ULDDescriptorHead(in_channels=0)
