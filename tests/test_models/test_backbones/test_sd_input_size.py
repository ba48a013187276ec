# Copyright (c) mmuld contributors. All rights reserved.
"""``sd_input_size``: SD sees a resized crop, the heads keep theirs."""
import pytest
import torch
import torch.nn.functional as F

from mmuld.models.backbones import StableDiffusionBackbone


def _images(b: int, size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((b, 3, size, size), generator=gen) * 2 - 1


def _backbone(tiny_sd_dir, **kwargs):
    torch.manual_seed(0)
    return StableDiffusionBackbone(
        pretrained=tiny_sd_dir,
        timesteps=(50, 300),
        agg_channels=16,
        out_stride=4,
        **kwargs)


def test_resized_for_sd_only(tiny_sd_dir):
    plain = _backbone(tiny_sd_dir)
    big = _backbone(tiny_sd_dir, sd_input_size=96)
    assert big.sd_input_size == (96, 96)
    x = _images(2, 64)
    out_plain = plain(x)[0]
    out_big = big(x)[0]
    # F_ag (and so the heads) keep input_size / out_stride
    assert out_plain.shape == out_big.shape == (2, 16, 16, 16)
    f_plain = plain.extract_features(x)
    f_big = big.extract_features(x)
    # SD ran on 96 px: its maps are 1.5x larger and differ
    assert [tuple(f.shape[-2:]) for f in f_big] == [(6, 6)] * 2 + [(12, 12)
                                                                   ] * 2
    assert [tuple(f.shape[-2:]) for f in f_plain] == [(4, 4)] * 2 + [(8, 8)
                                                                     ] * 2
    assert not torch.allclose(out_plain, out_big, atol=1e-3)
    # ... and equal the features of the resized image fed directly
    up = F.interpolate(x, size=(96, 96), mode='bilinear',
                       align_corners=False)
    for a, b in zip(f_big, plain.extract_features(up)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # the naive reference extractor resizes the same way
    for a, b in zip(f_big, big.extract_features_naive(x)):
        torch.testing.assert_close(a.float(), b, atol=1e-4, rtol=1e-4)


def test_crop_needs_only_out_stride_when_resized(tiny_sd_dir):
    # 36 px is no multiple of the VAE factor 8, but SD sees 64 px
    model = _backbone(tiny_sd_dir, sd_input_size=(64, 64))
    assert model(_images(1, 36))[0].shape == (1, 16, 9, 9)
    with pytest.raises(ValueError, match='out_stride'):
        model(_images(1, 38))


@pytest.mark.parametrize('bad', [0, -64, 40, (64, ), (64, 40), '512', 64.0,
                                 True])
def test_invalid_sd_input_size(tiny_sd_dir, bad):
    with pytest.raises(ValueError, match='sd_input_size'):
        _backbone(tiny_sd_dir, sd_input_size=bad)


def test_agg_cfg_passes_through(tiny_sd_dir):
    model = _backbone(tiny_sd_dir, agg_cfg=dict(fast=False, with_cp=True))
    assert not model.aggregator.fast and model.aggregator.with_cp
    with pytest.raises(ValueError, match='in_channels'):
        _backbone(tiny_sd_dir, agg_cfg=dict(in_channels=[4]))
