# Copyright (c) mmuld contributors. All rights reserved.
"""Corner candidates on images whose corners are known."""
import numpy as np
import pytest
import torch

from mmuld.models.utils.interest_points import corner_candidates


def _square(size=32, lo=8, hi=23):
    img = -torch.ones(1, 3, size, size)
    img[..., lo:hi + 1, lo:hi + 1] = 1.0
    return img


def test_corners_of_a_square_are_found():
    kpts, valid = corner_candidates(_square(), num=4, window=5, spacing=3)
    assert valid.all()
    found = kpts[0].numpy()
    truth = np.array([[8, 8], [23, 8], [8, 23], [23, 23]], np.float32)
    # every corner of the square has a candidate within a pixel and a half
    d = np.linalg.norm(found[:, None] - truth[None], axis=-1)
    assert d.min(0).max() <= 1.5
    # ...and no candidate lies on an edge away from the corners
    assert d.min(1).max() <= 1.5


def test_box_and_margin_keep_corners_inside():
    # the image shows only the left half of the input: the square's right
    # corners and the edge of the padding are outside
    img = _square()
    kpts, valid = corner_candidates(
        img, num=8, boxes=[np.array([-0.5, -0.5, 15.5, 31.5])], margin=2)
    pts = kpts[0][valid[0]]
    assert len(pts) >= 2
    assert (pts[:, 0] <= 13.5).all()


def test_flat_image_has_no_candidates_and_rows_are_padded():
    kpts, valid = corner_candidates(torch.zeros(2, 3, 16, 16), num=5)
    assert kpts.shape == (2, 5, 2) and valid.shape == (2, 5)
    assert not valid.any()
    with pytest.raises(ValueError, match='window'):
        corner_candidates(torch.zeros(1, 3, 16, 16), num=5, window=4)


def _ear(size=64, apex=(32.0, 12.0), half_angle=20.0):
    """A bright pointed tip (a wedge opening downwards) on a dark ground,
    drawn with 8x supersampling."""
    import cv2
    s = 8
    a = np.deg2rad(half_angle)
    ax, ay = apex
    pts = np.array([[ax, ay], [ax - 40 * np.tan(a), ay + 40],
                    [ax + 40 * np.tan(a), ay + 40]]) * s
    big = np.zeros((size * s, size * s), np.float32)
    cv2.fillPoly(big, [pts.round().astype(np.int32)], 1.0)
    img = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    # pixel centres at integers: the apex sits at apex - 0.5 + 0.5 / s
    return torch.from_numpy(img * 2 - 1)[None, None].expand(1, 3, -1, -1), \
        np.array(apex) - 0.5


def test_subpix_moves_a_corner_to_the_tip():
    img, tip = _ear()
    d = {}
    for r in (0, 4):
        kpts, valid = corner_candidates(img, num=3, window=5, spacing=3,
                                        subpix=r)
        pts = kpts[0][valid[0]].numpy()
        d[r] = np.linalg.norm(pts - tip, axis=-1).min()
    # the strongest structure-tensor response lies inside the tip
    assert d[0] > 1.0, d
    assert d[4] < 0.6 * d[0], d


def test_subpix_keeps_corners_inside_the_box():
    img = _square()
    box = np.array([-0.5, -0.5, 15.5, 31.5])
    kpts, valid = corner_candidates(img, num=8, boxes=[box], margin=2,
                                    subpix=4)
    pts = kpts[0][valid[0]]
    assert len(pts) >= 2 and (pts[:, 0] <= 13).all()
