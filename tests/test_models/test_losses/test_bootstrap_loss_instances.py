# Copyright (c) mmuld contributors. All rights reserved.
"""The bootstrapping terms that ask for agreement across instances."""
import math

import pytest
import torch

from mmuld.models.utils.self_training_augment import photometric_change
from mmuld.registry import MODELS

H = W = 6
STRIDE = 4
SIZE = H * STRIDE


def _identity(batch):
    return torch.tensor([[1., 0., 0.], [0., 1., 0.]]).repeat(batch, 1, 1)


def _cells(batch, perm=None):
    """One orthogonal descriptor per cell; image i's cells permuted by
    ``perm[i]`` (None: every image the same)."""
    eye = torch.eye(H * W)
    maps = []
    for i in range(batch):
        e = eye if perm is None else eye[perm[i]]
        maps.append(e.T.reshape(H * W, H, W))
    return torch.stack(maps)


def test_exchange_is_free_when_instances_agree_and_costs_when_not():
    loss = MODELS.build(dict(type='BootstrapLoss', max_queries=None,
                             exchange_weight=1.0))
    plain = MODELS.build(dict(type='BootstrapLoss', max_queries=None))
    logits = torch.zeros(3, 1, H, W)
    same = _cells(3)  # cell i of every image has the same descriptor
    a = loss(logits, same, logits, same, _identity(3), STRIDE)
    b = plain(logits, same, logits, same, _identity(3), STRIDE)
    # the exchange through another instance finds the same match: the NLL
    # about doubles (the soft match into the other image is nearly the
    # cell itself)
    assert a['loss_boot_desc'].item() == pytest.approx(
        2 * b['loss_boot_desc'].item(), rel=1e-2)
    # instances that share nothing (each image its own block of
    # descriptor dimensions): matching an image to its own copy is as
    # easy, the exchange through another instance is not
    own = torch.zeros(3, 3 * H * W, H, W)
    for i in range(3):
        own[i, i * H * W:(i + 1) * H * W] = same[i]
    a2 = loss(logits, own, logits, own, _identity(3), STRIDE)
    b2 = plain(logits, own, logits, own, _identity(3), STRIDE)
    assert b2['loss_boot_desc'].item() == pytest.approx(
        b['loss_boot_desc'].item(), rel=1e-4)
    assert a2['loss_boot_desc'].item() > a['loss_boot_desc'].item() + 1.0
    # it trains the descriptors
    own = own.clone().requires_grad_(True)
    loss(logits, own, logits, own, _identity(3), STRIDE)[
        'loss_boot_desc'].backward()
    assert own.grad.abs().sum() > 0


def test_keypoint_positives_need_another_instance():
    high = torch.full((2, 1, H, W), 5.0)
    # images 0 and 1 share their cells' descriptors except 4 cells that
    # image 1 replaces by new ones: in either image those 4 do not come
    # back to themselves through the other image
    g = torch.Generator().manual_seed(0)
    shared = torch.nn.functional.normalize(
        torch.randn(64, H, W, generator=g), dim=0)
    other = shared.clone()
    other[:, 0, :4] = torch.nn.functional.normalize(
        torch.randn(64, 4, generator=g), dim=0)
    desc = torch.stack([shared, other])
    plain = MODELS.build(dict(type='BootstrapLoss', max_queries=None,
                              match_tolerance=0.5))
    cross = MODELS.build(dict(type='BootstrapLoss', max_queries=None,
                              match_tolerance=0.5, kpt_cross_instance=True))
    p = plain(high, desc, high, desc, _identity(2), STRIDE)
    c = cross(high, desc, high, desc, _identity(2), STRIDE)
    pos = math.log1p(math.exp(-5.0))
    neg = math.log1p(math.exp(5.0))
    assert p['loss_boot_kpt'].item() == pytest.approx(pos, rel=1e-4)
    frac = 4 / 36
    assert c['loss_boot_kpt'].item() == pytest.approx(
        (1 - frac) * pos + frac * neg, rel=1e-3)


def test_valid_only_ignores_cells_without_correspondence():
    loss = MODELS.build(dict(type='BootstrapLoss', max_queries=None,
                             kpt_valid_only=True))
    shift = torch.tensor([[1., 0., SIZE / 2.], [0., 1., 0.]])[None]
    desc = _cells(1)
    desc_b = torch.roll(desc, shifts=W // 2, dims=3)  # B = A moved right
    low = torch.full((1, 1, H, W), -5.0)
    # half the cells leave the image; the other half match (positives).
    # Confident "no keypoint" logits cost log(1 + e^5) on a positive and
    # nearly nothing on a negative: counting only the cells with a
    # correspondence doubles the mean
    r = loss(low, desc, low, desc_b, shift, STRIDE)
    allq = MODELS.build(dict(type='BootstrapLoss', max_queries=None))(
        low, desc, low, desc_b, shift, STRIDE)
    pos = math.log1p(math.exp(5.0))
    assert r['loss_boot_kpt'].item() == pytest.approx(pos, rel=1e-3)
    assert allq['loss_boot_kpt'].item() == pytest.approx(
        0.5 * pos + 0.5 * math.log1p(math.exp(-5.0)), rel=1e-3)


def test_photometric_change_changes_colour_not_geometry():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(8, 3, 16, 16, generator=g) * 2 - 1
    out = photometric_change(img, brightness=0, contrast=0, saturation=0,
                             hue_shuffle=1.0, grayscale=0, generator=g)
    # a channel permutation per image: the same values, other channels
    for i in range(8):
        assert sorted(out[i].flatten().tolist()) == pytest.approx(
            sorted(img[i].flatten().tolist()))
    assert not torch.allclose(out, img)
    gray = photometric_change(img, brightness=0, contrast=0, saturation=0.5,
                              hue_shuffle=0, grayscale=1.0, generator=g)
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(
        gray[:, 1], gray[:, 2])
