# Copyright (c) mmuld contributors. All rights reserved.
import os
import os.path as osp
import shutil

import pytest
import torch

from mmuld.models.backbones import (HyperFeatureAggregator,
                                    StableDiffusionBackbone, check_sd_dir)
from mmuld.registry import MODELS
from mmuld.testing import build_tiny_sd


def _images(b: int, size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((b, 3, size, size), generator=gen) * 2 - 1


@pytest.fixture(scope='module')
def backbone(tiny_sd_dir):
    return StableDiffusionBackbone(
        pretrained=tiny_sd_dir, timesteps=(50, 300, 700), agg_channels=32)


def test_tiny_sd_layout_and_determinism(tiny_sd_dir, tmp_path):
    for part in ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'):
        assert osp.isdir(osp.join(tiny_sd_dir, part))
    assert osp.isfile(osp.join(tiny_sd_dir, 'model_index.json'))
    check_sd_dir(tiny_sd_dir)
    size = sum(
        osp.getsize(osp.join(r, f)) for r, _, fs in os.walk(tiny_sd_dir)
        for f in fs)
    assert size < 5 * 2**20
    other = build_tiny_sd(str(tmp_path / 'again'), seed=0)
    weights = 'unet/diffusion_pytorch_model.safetensors'
    with open(osp.join(tiny_sd_dir, weights), 'rb') as f1, open(
            osp.join(other, weights), 'rb') as f2:
        assert f1.read() == f2.read()


def test_build_from_registry_and_output_shapes(tiny_sd_dir, backbone):
    cfg = dict(
        type='StableDiffusionBackbone',
        pretrained=tiny_sd_dir,
        timesteps=(100, 400),
        agg_channels=16)
    model = MODELS.build(cfg)
    assert isinstance(model, StableDiffusionBackbone)
    assert model.vae_scale_factor == 8
    assert model.layers == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert model.out_channels == 16
    for size in (64, 96):
        out = model(_images(2, size))
        assert isinstance(out, tuple) and len(out) == 1
        assert out[0].shape == (2, 16, size // 8, size // 8)
        assert out[0].dtype == torch.float32
        assert torch.isfinite(out[0]).all()
    feats = backbone.extract_features(_images(1, 64))
    assert [f.shape[:2] for f in feats] == [(1, 3)] * 4
    # tiny UNet decoder: strides 16 (block 0) and 8 (block 1) of the image
    assert [tuple(f.shape[-2:]) for f in feats] == [(4, 4)] * 2 + [(8, 8)] * 2


def test_custom_layers_and_out_stride(tiny_sd_dir):
    model = StableDiffusionBackbone(
        pretrained=tiny_sd_dir,
        layers=[(0, 1)],
        timesteps=(10, ),
        agg_channels=8,
        out_stride=4)
    assert model.layer_channels == [model.unet.up_blocks[0].resnets[1]
                                    .out_channels]
    out = model(_images(1, 64))[0]
    assert out.shape == (1, 8, 16, 16)
    model = StableDiffusionBackbone(
        pretrained=tiny_sd_dir, max_up_block=0, timesteps=(10, ))
    assert model.layers == [(0, 0), (0, 1)]
    with pytest.raises(ValueError, match='does not exist'):
        StableDiffusionBackbone(pretrained=tiny_sd_dir, layers=[(5, 0)])
    with pytest.raises(ValueError, match='timesteps'):
        StableDiffusionBackbone(pretrained=tiny_sd_dir, timesteps=(1000, ))
    with pytest.raises(ValueError, match='multiple'):
        model(_images(1, 60))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        model(torch.zeros(1, 1, 64, 64))


def test_gradients_reach_only_the_aggregator(backbone):
    backbone.train()
    backbone.zero_grad()
    out = backbone(_images(2, 64))[0]
    out.square().mean().backward()
    names = [n for n, _ in backbone.named_parameters()]
    assert names and all(n.startswith('aggregator.') for n in names)
    assert backbone.aggregator.mixing_weights.grad is not None
    assert backbone.aggregator.mixing_weights.grad.abs().sum() > 0
    for p in backbone.aggregator.parameters():
        assert p.grad is not None
    sd_params = list(backbone.unet.parameters()) + list(
        backbone.vae.parameters())
    assert sd_params
    assert all(not p.requires_grad and p.grad is None for p in sd_params)


def test_same_seed_same_features(tiny_sd_dir, backbone):
    x = _images(2, 64)
    f1 = backbone.extract_features(x)
    f2 = backbone.extract_features(x)
    for a, b in zip(f1, f2):
        assert torch.equal(a, b)
    # features of an image do not depend on the rest of the batch
    f_single = backbone.extract_features(x[1:])
    for a, b in zip(f1, f_single):
        torch.testing.assert_close(a[1:], b, atol=1e-4, rtol=1e-4)
    other = StableDiffusionBackbone(
        pretrained=tiny_sd_dir,
        timesteps=(50, 300, 700),
        agg_channels=32,
        noise_seed=1)
    f3 = other.extract_features(x)
    assert not torch.allclose(f1[0], f3[0])


def test_batched_equals_naive(backbone):
    x = _images(2, 64, seed=3)
    batched = backbone.extract_features(x)
    naive = backbone.extract_features_naive(x)
    assert len(batched) == len(naive) == len(backbone.layers)
    for a, b in zip(batched, naive):
        assert a.shape == b.shape
        torch.testing.assert_close(a.float().cpu(), b, atol=1e-4, rtol=1e-4)


def test_feature_cache(tiny_sd_dir):
    model = StableDiffusionBackbone(
        pretrained=tiny_sd_dir,
        timesteps=(50, 300),
        agg_channels=16,
        feature_cache=True,
        feature_cache_size=3)
    x = _images(2, 64)
    ref = model.extract_features(x)
    assert len(model.feature_cache) == 2
    calls = []
    handle = model.unet.register_forward_pre_hook(
        lambda *args: calls.append(1))
    cached = model.extract_features(x.flip(0))  # same images, other order
    assert calls == []
    for a, b in zip(ref, cached):
        assert torch.equal(a.flip(0), b)
    model.extract_features(_images(2, 64, seed=1))
    handle.remove()
    assert calls == [1] and len(model.feature_cache) == 3


def test_missing_or_incomplete_dir(tiny_sd_dir, tmp_path):
    missing = str(tmp_path / 'no_such_sd')
    with pytest.raises(FileNotFoundError, match='no_such_sd'):
        StableDiffusionBackbone(pretrained=missing)
    broken = tmp_path / 'broken_sd'
    shutil.copytree(tiny_sd_dir, broken)
    shutil.rmtree(broken / 'vae')
    os.remove(broken / 'scheduler' / 'scheduler_config.json')
    with pytest.raises(FileNotFoundError) as err:
        StableDiffusionBackbone(pretrained=str(broken))
    msg = str(err.value)
    assert 'broken_sd' in msg and 'vae/' in msg
    assert 'scheduler/scheduler_config.json' in msg
    with pytest.raises(FileNotFoundError, match='nothing.safetensors'):
        StableDiffusionBackbone(
            pretrained=str(tmp_path / 'nothing.safetensors'))


def test_state_dict_has_only_aggregator(tiny_sd_dir, backbone):
    sd = backbone.state_dict()
    assert sd and all(k.startswith('aggregator.') for k in sd)
    n_agg = sum(p.numel() for p in backbone.aggregator.parameters())
    assert sum(v.numel() for v in sd.values()) >= n_agg
    assert sum(p.numel() for p in backbone.unet.parameters()) > 10 * n_agg
    # round trip into a fresh model
    other = StableDiffusionBackbone(
        pretrained=tiny_sd_dir, timesteps=(50, 300, 700), agg_channels=32)
    with torch.no_grad():
        backbone.aggregator.mixing_weights.add_(0.5)
    other.load_state_dict(backbone.state_dict(), strict=True)
    assert torch.equal(other.aggregator.mixing_weights,
                       backbone.aggregator.mixing_weights)


def test_sd_stays_in_eval_mode(backbone):
    backbone.train()
    assert backbone.training and backbone.aggregator.training
    assert not backbone.unet.training and not backbone.vae.training
    assert all(not m.training for m in backbone.unet.modules())
    backbone.eval()
    assert not backbone.aggregator.training


def test_aggregator_mixing_is_convex():
    agg = HyperFeatureAggregator([8, 16], num_timesteps=3, out_channels=8)
    w = agg.normalized_weights()
    assert w.shape == (2, 3)
    torch.testing.assert_close(w.sum(), torch.tensor(1.))
    feats = [torch.randn(2, 3, 8, 4, 4), torch.randn(2, 3, 16, 8, 8)]
    out = agg(feats, (8, 8))
    assert out.shape == (2, 8, 8, 8)
    with pytest.raises(ValueError, match='timesteps'):
        agg([f[:, :2] for f in feats], (8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('autocast', [False, True])
def test_cuda_bf16_matches_naive(tiny_sd_dir, autocast):
    model = StableDiffusionBackbone(
        pretrained=tiny_sd_dir,
        timesteps=(50, 300),
        agg_channels=16,
        dtype='bf16',
        autocast=autocast).cuda()
    x = _images(2, 64).cuda()
    feats = model.extract_features(x)
    assert feats[0].is_cuda
    if not autocast:
        assert feats[0].dtype == torch.bfloat16
    naive = model.extract_features_naive(x)
    for a, b in zip(feats, naive):
        err = (a.float().cpu() - b).norm() / b.norm()
        assert err < 0.05
    out = model(x)[0]
    assert out.shape == (2, 16, 8, 8) and out.dtype == torch.float32
