# Copyright (c) mmuld contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmuld.clustering import exemplar_assignment


def test_hand_made():
    centroids = np.array([[0., 0.], [10., 10.]], np.float32)
    desc = np.array([
        [1., 0.],    # 0: img 0, cluster 0, dist 1
        [0.5, 0.],   # 1: img 0, cluster 0, dist 0.25 -> exemplar
        [9., 10.],   # 2: img 0, cluster 1 -> exemplar
        [3., 3.],    # 3: img 1, cluster 0 -> exemplar
        [10., 10.],  # 4: img 2, ignored (label -1)
    ], np.float32)
    img = np.array([0, 0, 0, 1, 2])
    lab = np.array([0, 0, 1, 0, -1])
    idx, dist = exemplar_assignment(
        desc, img, lab, centroids, return_distances=True, device='cpu')
    assert idx.tolist() == [[1, 2], [3, -1], [-1, -1]]
    assert dist[0].tolist() == [0.25, 1.0]
    assert torch.isinf(dist[1, 1]) and torch.isinf(dist[2]).all()
    idx4 = exemplar_assignment(desc, img, lab, centroids, num_images=4)
    assert idx4.shape == (4, 2) and idx4[3].tolist() == [-1, -1]


def test_ties_pick_smallest_index():
    desc = np.array([[1., 0.], [0., 1.], [-1., 0.]], np.float32)
    idx = exemplar_assignment(desc, np.zeros(3, int), np.zeros(3, int),
                              np.zeros((1, 2), np.float32))
    assert idx.tolist() == [[0]]


def test_matches_bruteforce():
    rng = np.random.default_rng(0)
    p, c, n_img = 600, 7, 13
    desc = rng.normal(size=(p, 5)).astype(np.float32)
    cent = rng.normal(size=(c, 5)).astype(np.float32)
    img = rng.integers(0, n_img, p)
    lab = rng.integers(-1, c, p)
    idx = exemplar_assignment(
        torch.from_numpy(desc), torch.from_numpy(img), torch.from_numpy(lab),
        torch.from_numpy(cent)).numpy()
    d = ((desc - cent[np.maximum(lab, 0)])**2).sum(1)
    for j in range(n_img):
        for k in range(c):
            cand = np.flatnonzero((img == j) & (lab == k))
            expect = cand[np.argmin(d[cand])] if len(cand) else -1
            assert idx[j, k] == expect


def test_bad_input():
    desc = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match='labels'):
        exemplar_assignment(desc, np.zeros(3, int), np.array([0, 1, 5]),
                            np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match='image_ids'):
        exemplar_assignment(desc, np.zeros(2, int), np.zeros(3, int),
                            np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match='centroids'):
        exemplar_assignment(desc, np.zeros(3, int), np.zeros(3, int),
                            np.zeros((2, 3), np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_results_on_the_device_of_the_inputs_cuda():
    # CUDA is picked for the computation when available,
    # yet CPU inputs must give CPU results (and CUDA inputs CUDA results)
    rng = np.random.default_rng(1)
    desc = torch.from_numpy(rng.normal(size=(50, 4)).astype(np.float32))
    img = torch.from_numpy(rng.integers(0, 5, 50))
    lab = torch.from_numpy(rng.integers(0, 3, 50))
    cent = torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32))
    idx, dist = exemplar_assignment(
        desc, img, lab, cent, return_distances=True)
    assert idx.device.type == 'cpu' and dist.device.type == 'cpu'
    ref = exemplar_assignment(desc, img, lab, cent, device='cpu')
    assert torch.equal(idx, ref)
    idx_cuda = exemplar_assignment(
        desc.cuda(), img.cuda(), lab.cuda(), cent.cuda(), device='cpu')
    assert idx_cuda.is_cuda and torch.equal(idx_cuda.cpu(), ref)
