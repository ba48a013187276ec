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
