# Copyright (c) mmuld contributors. All rights reserved.
"""Flip partners of discovered landmarks from mirrored predictions."""
import numpy as np
import pytest

from mmuld.apis import (flip_distance_matrix, flip_pairs_from_indices,
                        match_flip_pairs)


def _mirror_scene(n=6, seed=0):
    """Faces with landmarks 0<->3, 1<->4 symmetric, 2 and 5 on the axis."""
    rng = np.random.default_rng(seed)
    partner = [3, 4, 2, 0, 1, 5]
    width = 200
    kpts = np.zeros((n, 6, 2))
    for i in range(n):
        cx = 100 + rng.uniform(-5, 5)
        left = np.stack([cx - rng.uniform(20, 60, 2),
                         rng.uniform(40, 160, 2)], -1)
        kpts[i, 0], kpts[i, 1] = left
        kpts[i, 3] = [2 * cx - left[0, 0], left[0, 1]]
        kpts[i, 4] = [2 * cx - left[1, 0], left[1, 1]]
        kpts[i, 2] = [cx, rng.uniform(40, 160)]
        kpts[i, 5] = [cx, rng.uniform(40, 160)]
    # predictions on the flipped image: landmark j sits at the mirror of j,
    # mapped back (x -> W - 1 - x) it lands on partner[j].
    flipped = np.zeros_like(kpts)
    for j in range(6):
        mirrored = kpts[:, j].copy()
        mirrored[:, 0] = width - 1 - mirrored[:, 0]
        flipped[:, partner[j]] = mirrored  # landmark partner[j] seen there
    back = flipped.copy()
    back[..., 0] = width - 1 - back[..., 0]
    return kpts, back + rng.normal(0, 0.5, back.shape), partner


def test_recovers_left_right_pairs_and_centres():
    kpts, back, partner = _mirror_scene()
    vis = np.ones(kpts.shape[:2], bool)
    fd = flip_distance_matrix(kpts, vis, back, vis,
                              norm=np.full(len(kpts), 100.0))
    assert fd['distance'].shape == (6, 6)
    assert np.all(fd['count'] == len(kpts))
    flip = match_flip_pairs(fd['distance'])
    assert flip == partner
    assert all(flip[flip[i]] == i for i in range(6))
    assert flip_pairs_from_indices(flip) == [[0, 3], [1, 4]]


def test_invisible_landmarks_are_ignored():
    kpts, back, partner = _mirror_scene()
    vis = np.ones(kpts.shape[:2], bool)
    fvis = vis.copy()
    fvis[:, 4] = False  # flipped landmark 4 never found
    fd = flip_distance_matrix(kpts, vis, back, fvis)
    assert np.all(np.isnan(fd['distance'][:, 4]))
    assert np.all(fd['count'][:, 4] == 0)
    flip = match_flip_pairs(fd['distance'])
    assert all(flip[flip[i]] == i for i in range(6))
    assert flip[0] == 3 and flip[3] == 0 and flip[2] == 2


def test_cycles_become_centre_landmarks():
    # 0 <-> 1 is a clean pair; 2, 3, 4 are cheap to assign to each other
    # only: every zero-cost assignment sends them round a 3-cycle, which has
    # no consistent partner, so they stay centre landmarks
    d = np.full((5, 5), 10.0)
    d[0, 1] = d[1, 0] = 0.0
    for i, j in [(2, 3), (3, 4), (4, 2), (3, 2), (4, 3), (2, 4)]:
        d[i, j] = 0.0
    flip = match_flip_pairs(d)
    assert flip == [1, 0, 2, 3, 4]
    assert flip_pairs_from_indices(flip) == [[0, 1]]


def test_bad_shapes():
    with pytest.raises(ValueError, match=r'\(N, K, 2\)'):
        flip_distance_matrix(np.zeros((2, 3, 2)), np.ones((2, 3)),
                             np.zeros((2, 4, 2)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r'\(K, K\)'):
        match_flip_pairs(np.zeros((2, 3)))


def test_max_distance_keeps_unreliable_landmarks_centre():
    # 0<->1 is a clean pair; 2 and 3 are noise that the plain assignment
    # pairs with 0 / 1 because their self-costs are high.
    d = np.array([[0.9, 0.05, 0.6, 0.9],
                  [0.05, 0.9, 0.9, 0.6],
                  [0.6, 0.9, 1.0, 0.9],
                  [0.9, 0.6, 0.9, 1.0]])
    assert match_flip_pairs(d) != [1, 0, 2, 3]
    assert match_flip_pairs(d, max_distance=0.2) == [1, 0, 2, 3]
    with pytest.raises(ValueError, match='max_distance'):
        match_flip_pairs(d, max_distance=0)
