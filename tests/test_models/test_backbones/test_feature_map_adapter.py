# Copyright (c) mmuld contributors. All rights reserved.
"""FeatureMapAdapter: any registered backbone feeds the ULD heads."""
import pytest
import torch

from mmuld.registry import MODELS
from mmuld.utils import register_all_modules

RESNET = dict(type='ResNet', depth=18, stem_channels=16, base_channels=16,
              num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
              out_indices=(0, 1, 2))


def _adapter(**kw):
    register_all_modules()
    cfg = dict(type='FeatureMapAdapter', backbone=RESNET,
               in_channels=(16, 32, 64), out_channels=24, out_stride=4)
    cfg.update(kw)
    return MODELS.build(cfg)


def test_one_map_at_out_stride_and_all_parts_train():
    ad = _adapter()
    ad.init_weights()
    x = torch.randn(2, 3, 64, 64)
    out, = ad(x)
    assert out.shape == (2, 24, 16, 16)
    out.square().mean().backward()
    # the wrapped mmpose ResNet is trained with the adapter
    grads = [p.grad for n, p in ad.named_parameters()
             if n.startswith('backbone.')]
    assert grads and all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    ad8 = _adapter(out_stride=8, in_indices=(1, 2))
    assert ad8(x)[0].shape == (2, 24, 8, 8)


def test_mismatched_channels_are_refused_with_the_numbers():
    ad = _adapter(in_channels=(16, 32, 99))
    with pytest.raises(ValueError, match='99'):
        ad(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match='out of range'):
        _adapter(in_indices=(5, ))


def test_uld_estimator_trains_with_a_resnet(tmp_path):
    """Bootstrapping loss falls with the ResNet adapter in the estimator."""
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='ULDEstimator',
        num_landmarks=4,
        backbone=dict(type='FeatureMapAdapter', backbone=RESNET,
                      in_channels=(16, 32, 64), out_channels=24,
                      out_stride=4),
        detector_head=dict(type='ULDDetectorHead', in_channels=24,
                           feat_channels=16),
        descriptor_head=dict(type='ULDDescriptorHead', in_channels=24,
                             feat_channels=16, desc_dim=16),
        loss_bootstrap=dict(type='BootstrapLoss', max_queries=None)))
    model.init_weights()
    model.set_stage('bootstrap')
    assert model.stride == 4
    # a fixed textured image: the network must learn to match its
    # rotated copies
    g = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(base, size=(48, 48),
                                        mode='bilinear')
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = last = None
    for i in range(30):
        torch.manual_seed(i)
        loss = model.loss(x, [])['loss_boot_desc']
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
        last = float(loss)
    assert last < 0.8 * first, (first, last)
