# Copyright (c) mmuld contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmuld.clustering import TwoStageResult, two_stage_clustering


def _make_data(rng):
    """Two poses (A: images 0-3, B: images 4-7), 3 landmarks per image.

    Pose A landmark descriptors are near a_k, pose B near b_k. Image 0 has an
    extra, noisier copy of landmark 0.
    """
    codes = np.concatenate([
        rng.normal(0, 0.1, (4, 4)),
        rng.normal(0, 0.1, (4, 4)) + 5,
    ]).astype(np.float32)
    a = np.eye(3, 6, dtype=np.float32) * 10
    b = np.eye(3, 6, 3, dtype=np.float32) * 10
    desc, img, lm = [], [], []
    for j in range(8):
        base = a if j < 4 else b
        for k in range(3):
            desc.append(base[k] + rng.normal(0, 0.1, 6))
            img.append(j)
            lm.append(k)
    desc.append(a[0] + 1.0)  # noisy duplicate of landmark 0 in image 0
    img.append(0)
    lm.append(0)
    return codes, np.array(desc, np.float32), np.array(img), np.array(lm)


def test_two_stage_known_answer():
    rng = np.random.default_rng(0)
    codes, desc, img, lm = _make_data(rng)
    res = two_stage_clustering(codes, desc, img, Q=2, K=3, seed=0,
                               device='cpu')
    assert isinstance(res, TwoStageResult)
    u = res.pose_labels.numpy()
    assert len(set(u[:4])) == 1 and len(set(u[4:])) == 1 and u[0] != u[4]
    assert res.centroids.shape == (2, 3, 6)
    assert res.num_clusters.tolist() == [3, 3]
    kp = res.kp_labels.numpy()
    # stage-2 labels are a permutation of the true landmark ids per pose
    for q_imgs in (range(0, 4), range(4, 8)):
        sel = np.isin(img, list(q_imgs))
        pairs = set(zip(lm[sel].tolist(), kp[sel].tolist()))
        assert len(pairs) == 3 and len({p[1] for p in pairs}) == 3
    r = res.kp_global_labels.numpy()
    np.testing.assert_array_equal(r, u[img] * 3 + kp)
    assert r.min() >= 0 and r.max() < 6
    # exemplars: each image has exactly one keypoint per landmark, except
    # image 0 whose clean landmark-0 point beats the noisy duplicate
    ex = res.exemplars.numpy()
    assert ex.shape == (8, 3)
    for j in range(8):
        pts = ex[j]
        assert (pts >= 0).all()
        assert (img[pts] == j).all()
        assert sorted(lm[pts].tolist()) == [0, 1, 2]
        np.testing.assert_array_equal(kp[pts], np.arange(3))
    assert len(desc) - 1 not in ex[0]
    # global view agrees with the local one, other pose columns are -1
    exg = res.exemplars_global.numpy()
    assert exg.shape == (8, 6)
    for j in range(8):
        np.testing.assert_array_equal(exg[j, u[j] * 3:u[j] * 3 + 3], ex[j])
        other = np.delete(exg[j], np.arange(u[j] * 3, u[j] * 3 + 3))
        assert (other == -1).all()
    pts, loc, glob = res.image_pseudo_labels(5)
    assert loc.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(glob.numpy(), u[5] * 3 + np.arange(3))
    np.testing.assert_array_equal(pts.numpy(), ex[5])
    # reproducible
    res2 = two_stage_clustering(codes, desc, img, Q=2, K=3, seed=0,
                                device='cpu')
    assert torch.equal(res.kp_labels, res2.kp_labels)


def test_pose_cluster_with_fewer_points_than_k():
    rng = np.random.default_rng(1)
    codes, desc, img, lm = _make_data(rng)
    # a third pose: image 8 alone, with only 2 keypoints
    codes = np.concatenate([codes, np.full((1, 4), -20, np.float32)])
    desc = np.concatenate([desc, rng.normal(size=(2, 6)).astype(np.float32)])
    img = np.concatenate([img, [8, 8]])
    res = two_stage_clustering(codes, desc, img, Q=3, K=3, device='cpu')
    q = int(res.pose_labels[8])
    assert res.num_clusters[q] == 2
    assert sorted(res.num_clusters.tolist()) == [2, 3, 3]
    assert torch.isnan(res.centroids[q, 2]).all()
    assert torch.isfinite(res.centroids[q, :2]).all()
    ex8 = res.exemplars[8].tolist()
    assert sorted(ex8[:2]) == [len(desc) - 2, len(desc) - 1]
    assert ex8[2] == -1
    pts, loc, _ = res.image_pseudo_labels(8)
    assert loc.tolist() == [0, 1]


def test_bad_input():
    codes = np.zeros((3, 2), np.float32)
    desc = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match='kp_image_ids'):
        two_stage_clustering(codes, desc, np.array([0, 1, 2, 3]), Q=2, K=2)
    with pytest.raises(ValueError, match='k=4'):
        two_stage_clustering(codes, desc, np.array([0, 1, 2, 2]), Q=4, K=2)
