# Copyright (c) mmuld contributors. All rights reserved.
import math

import pytest
import torch

from mmuld.models.utils import (invert_affine, random_affine_matrices,
                                random_affine_pair, render_gaussian_heatmap,
                                transform_points, warp_images)


def test_identity_warp_and_point_inverse():
    img = torch.rand(2, 3, 9, 7)
    eye = torch.tensor([[1., 0., 0.], [0., 1., 0.]]).repeat(2, 1, 1)
    assert torch.allclose(warp_images(img, eye), img, atol=1e-5)
    mats = random_affine_matrices(2, (9, 7), generator=torch.Generator()
                                  .manual_seed(0))
    pts = torch.rand(2, 5, 2) * 7
    back = transform_points(transform_points(pts, mats), invert_affine(mats))
    assert torch.allclose(back, pts, atol=1e-4)
    with pytest.raises(ValueError, match='points'):
        transform_points(torch.zeros(2, 5), mats)


def test_pure_flip_is_exact():
    img = torch.zeros(1, 1, 6, 8)
    img[0, 0, 5, 3] = 1.0  # pixel (x=3, y=5)
    pair = random_affine_pair(img, max_rotation=0.0, flip_prob=1.0)
    assert torch.allclose(
        pair.matrices[0],
        torch.tensor([[-1., 0., 7.], [0., 1., 0.]]), atol=1e-6)
    assert torch.allclose(pair.images, torch.flip(img, dims=[3]), atol=1e-6)
    mapped = pair.map_points(torch.tensor([[[3., 5.]]]))
    assert mapped[0, 0].tolist() == pytest.approx([4.0, 5.0])


def test_random_matrices_within_bounds_and_reproducible():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    m1 = random_affine_matrices(64, (32, 32), max_rotation=30, generator=g1)
    m2 = random_affine_matrices(64, (32, 32), max_rotation=30, generator=g2)
    assert torch.equal(m1, m2)
    lin = m1[:, :, :2]
    det = torch.linalg.det(lin)
    assert torch.allclose(det.abs(), torch.ones(64), atol=1e-5)
    assert (det < 0).any() and (det > 0).any()  # some flips, some not
    # undo the flip, the rest is a rotation of at most 30 degrees
    unflipped = lin.clone()
    unflipped[det < 0, :, 0] *= -1
    angles = torch.atan2(unflipped[:, 1, 0], unflipped[:, 0, 0])
    assert angles.abs().max() <= math.radians(30) + 1e-5
    # the centre is a fixed point of the rotation (without flip)
    centre = torch.full((64, 1, 2), 15.5)
    assert torch.allclose(transform_points(centre, m1), centre, atol=1e-4)


def test_affine_pair_round_trip_with_bright_blob():
    """A blob at p in the source lands at map_points(p) in the warp."""
    torch.manual_seed(0)
    size, p = 40, torch.tensor([[[13.3, 24.6]], [[25.0, 11.2]]])
    img = render_gaussian_heatmap(p, None, size, stride=1, sigma=1.5)
    gen = torch.Generator().manual_seed(1)
    pair = random_affine_pair(img, max_rotation=30, flip_prob=0.5,
                              generator=gen)
    expected = pair.map_points(p)[:, 0]
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32),
        torch.arange(size, dtype=torch.float32),
        indexing='ij')
    w = pair.images[:, 0]
    centroid = torch.stack([(w * xs).sum((1, 2)), (w * ys).sum((1, 2))],
                           dim=-1) / w.sum((1, 2))[:, None]
    assert torch.allclose(centroid, expected, atol=0.1)
    # argmax lands on the nearest pixel of the mapped point
    flat = w.flatten(1).argmax(1)
    peak = torch.stack([flat % size, flat // size], dim=-1).float()
    assert (peak - expected).abs().max() <= 1.0
