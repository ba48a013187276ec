# Copyright (c) mmuld contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmuld.models.losses import BootstrapLoss, dense_correspondences
from mmuld.models.utils import random_affine_matrices, warp_images
from mmuld.registry import MODELS

H = W = 6
STRIDE = 4
SIZE = H * STRIDE


def _flip(batch=2):
    return torch.tensor([[-1., 0., SIZE - 1.], [0., 1., 0.]]).repeat(
        batch, 1, 1)


def _one_hot_desc(batch=2):
    # every cell gets its own orthogonal descriptor -> perfect matching
    eye = torch.eye(H * W).view(H * W, H, W)
    return eye[None].repeat(batch, 1, 1, 1)


def test_dense_correspondences_identity_and_flip():
    eye = torch.tensor([[1., 0., 0.], [0., 1., 0.]])[None]
    target, valid, coords = dense_correspondences(H, W, eye, STRIDE)
    assert torch.equal(target[0], torch.arange(H * W)) and valid.all()
    target, valid, _ = dense_correspondences(H, W, _flip(1), STRIDE)
    v, u = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    assert torch.equal(target[0], (v * W + (W - 1 - u)).flatten())
    # a translation by the whole image leaves no valid correspondence
    shift = torch.tensor([[1., 0., float(SIZE)], [0., 1., 0.]])[None]
    _, valid, _ = dense_correspondences(H, W, shift, STRIDE)
    assert not valid.any()
    # half the image -> half the cells valid
    shift = torch.tensor([[1., 0., SIZE / 2.], [0., 1., 0.]])[None]
    _, valid, _ = dense_correspondences(H, W, shift, STRIDE)
    assert valid.sum() == H * W // 2


def test_perfect_descriptors_hand_values():
    loss_fn = MODELS.build(
        dict(type='BootstrapLoss', temperature=0.1, max_queries=None))
    assert isinstance(loss_fn, BootstrapLoss)
    desc_a = _one_hot_desc()
    desc_b = torch.flip(desc_a, dims=[3])  # B is the flipped image
    high = torch.full((2, 1, H, W), 5.0)
    losses = loss_fn(high, desc_a, high, desc_b, _flip(), stride=STRIDE)
    # similarity 1/0.1 = 10 for the true match, 0 for the 35 others
    nll = -math.log(math.exp(10) / (math.exp(10) + H * W - 1))
    assert losses['loss_boot_desc'].item() == pytest.approx(nll, rel=1e-4)
    # all cells survive the round trip -> all positives
    assert losses['loss_boot_kpt'].item() == pytest.approx(
        math.log1p(math.exp(-5.0)), rel=1e-4)
    low = -high
    losses = loss_fn(low, desc_a, low, desc_b, _flip(), stride=STRIDE)
    assert losses['loss_boot_kpt'].item() == pytest.approx(
        math.log1p(math.exp(5.0)), rel=1e-4)


def test_consistent_descriptors_beat_random():
    torch.manual_seed(0)
    loss_fn = BootstrapLoss(max_queries=None)
    logits = torch.full((2, 1, H, W), 3.0)
    desc_a = _one_hot_desc()
    good = loss_fn(logits, desc_a, logits, torch.flip(desc_a, dims=[3]),
                   _flip(), stride=STRIDE)
    rand_b = F.normalize(torch.randn(2, H * W, H, W), dim=1)
    bad = loss_fn(logits, desc_a, logits, rand_b, _flip(), stride=STRIDE)
    assert good['loss_boot_desc'] < bad['loss_boot_desc'] - 1.0
    # random descriptors rarely survive the round trip: with positive
    # logits the detector BCE is higher
    assert good['loss_boot_kpt'] < bad['loss_boot_kpt']


def test_rotation_with_warped_smooth_descriptors():
    """Descriptors warped with the known rotation match the originals."""
    torch.manual_seed(0)
    h = w = 12
    gen = torch.Generator().manual_seed(0)
    mats = random_affine_matrices(2, (h * 2, w * 2), max_rotation=30,
                                  generator=gen)
    # smooth, position-encoding descriptors of image A
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h),
                            torch.linspace(-1, 1, w), indexing='ij')
    feats = [torch.cos(k * xs + j * ys) for k in (2, 4) for j in (0, 2, 4)]
    feats += [torch.sin(k * xs + j * ys) for k in (2, 4) for j in (0, 2, 4)]
    desc_a = F.normalize(torch.stack(feats)[None].repeat(2, 1, 1, 1), dim=1)
    # warp at map level: map-pixel matrix for stride 2
    s = 2.0
    off = 0.5 / s - 0.5
    to_map = torch.tensor([[1 / s, 0, off], [0, 1 / s, off], [0, 0, 1.]])
    full = torch.cat([mats, torch.tensor([[[0, 0, 1.]]]).repeat(2, 1, 1)], 1)
    map_mats = (to_map @ full @ torch.linalg.inv(to_map))[:, :2]
    desc_b = F.normalize(warp_images(desc_a, map_mats), dim=1, eps=1e-6)
    logits = torch.zeros(2, 1, h, w)
    loss_fn = BootstrapLoss(max_queries=64, temperature=0.05)
    warped = loss_fn(logits, desc_a, logits, desc_b, mats, stride=s)
    shuffled = desc_b.flatten(2)[..., torch.randperm(h * w)].view_as(desc_b)
    wrong = loss_fn(logits, desc_a, logits, shuffled, mats, stride=s)
    assert warped['loss_boot_desc'] < wrong['loss_boot_desc']
    # with confident logits the BCE counts the failed round trips: most
    # warped cells (all but the rotated-in corners) are positives
    high = torch.full((2, 1, h, w), 10.0)
    loss_fn.max_queries = None
    warped = loss_fn(high, desc_a, high, desc_b, mats, stride=s)
    wrong = loss_fn(high, desc_a, high, shuffled, mats, stride=s)
    assert warped['loss_boot_kpt'] < 0.3 * wrong['loss_boot_kpt']


def test_gradients_and_empty_correspondences():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, H, W, requires_grad=True)
    desc = torch.randn(2, 8, H, W, requires_grad=True)
    desc_n = F.normalize(desc, dim=1)
    loss_fn = BootstrapLoss(max_queries=10)
    losses = loss_fn(logits, desc_n, logits, desc_n, _flip(), stride=STRIDE)
    sum(losses.values()).backward()
    assert torch.isfinite(desc.grad).all() and desc.grad.abs().sum() > 0
    assert torch.isfinite(logits.grad).all()

    shift = torch.tensor([[1., 0., 10. * SIZE], [0., 1., 0.]]).repeat(2, 1, 1)
    desc = torch.randn(2, 8, H, W, requires_grad=True)
    losses = loss_fn(logits, desc, logits, desc, shift, stride=STRIDE)
    assert losses['loss_boot_desc'].item() == 0.0
    assert losses['loss_boot_desc'].requires_grad
    assert torch.isfinite(losses['loss_boot_kpt'])


def test_bootstrap_bad_input():
    loss_fn = BootstrapLoss()
    d = torch.zeros(2, 4, H, W)
    with pytest.raises(ValueError, match='logits_a'):
        loss_fn(torch.zeros(2, 2, H, W), d, torch.zeros(2, 1, H, W), d,
                _flip())
    with pytest.raises(ValueError, match='matrices'):
        loss_fn(torch.zeros(2, 1, H, W), d, torch.zeros(2, 1, H, W), d,
                _flip(1))
    with pytest.raises(ValueError, match='temperature'):
        BootstrapLoss(temperature=0)
