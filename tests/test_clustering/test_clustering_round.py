# Copyright (c) mmuld contributors. All rights reserved.
"""Known-answer tests of a clustering round and of the pose alignment."""
import pytest
import torch

from mmuld.clustering import two_stage_clustering
from mmuld.clustering.clustering_round import (align_pose_clusters,
                                               cluster_pseudo_labels)

K, D = 4, 8


def _centres():
    """K well separated unit descriptors (the true landmark clusters)."""
    return torch.eye(D)[:K] * 1.0


def test_align_recovers_permuted_reference():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(K, D, generator=g) * 5
    perms = [torch.tensor([2, 0, 3, 1]), torch.tensor([3, 2, 1, 0]),
             torch.arange(K)]
    # pose cluster q's stage-2 cluster j is the reference landmark p_q[j]
    cents = torch.stack(
        [ref[p] + 0.05 * torch.randn(K, D, generator=g) for p in perms])
    perm = align_pose_clusters(cents, ref)
    assert perm.dtype == torch.long and perm.shape == (3, K)
    for q, p in enumerate(perms):
        # perm[q, k]: the stage-2 cluster playing landmark k = p_q^-1[k]
        assert perm[q].tolist() == torch.argsort(p).tolist()
        assert torch.equal(p[perm[q]], torch.arange(K))


def test_align_missing_cluster_takes_left_over_landmark():
    ref = torch.eye(K) * 3
    cents = ref[[1, 0, 2, 3]].clone()[None]
    cents[0, 3] = float('nan')  # stage-2 cluster 3 was never built
    perm = align_pose_clusters(cents, ref)
    assert perm[0].tolist() == [1, 0, 2, 3]


def _scene(n_img=6, two_groups=False, seed=0):
    """Images with one keypoint per true cluster at a fixed place, plus a
    worse (farther from the centre) copy of landmark 0 elsewhere."""
    g = torch.Generator().manual_seed(seed)
    centres = _centres()
    places = torch.tensor([[10., 10.], [50., 10.], [30., 30.], [30., 55.]])
    kpts, desc, ids, truth = [], [], [], []
    for i in range(n_img):
        order = torch.randperm(K, generator=g)  # detection order varies
        shift = 0.0
        if two_groups and i >= n_img // 2:
            shift = 0.15  # the second pose group's descriptors differ a bit
        for c in order.tolist():
            d = centres[c] + 0.03 * torch.randn(D, generator=g)
            d[(c + 1) % D] += shift
            kpts.append(places[c] + i)
            desc.append(d)
            ids.append(i)
            truth.append(c)
        # distractor: same cluster as landmark 0, much farther from it
        d = centres[0] + 0.3 * torch.randn(D, generator=g)
        d[0] = 0.75
        kpts.append(torch.tensor([60., 60.]))
        desc.append(d)
        ids.append(i)
        truth.append(-1)
    return (torch.stack(kpts), torch.stack(desc), torch.tensor(ids),
            torch.tensor(truth), places)


def _slot_truth(bank, places, n_img):
    """True cluster of the keypoint in every (image, slot)."""
    out = torch.full((n_img, K), -2)
    for i in range(n_img):
        for k in range(K):
            hit = ((places + i) - bank.keypoints[i, k]).norm(dim=-1) < 1e-4
            if hit.any():
                out[i, k] = int(hit.nonzero()[0])
    return out


def test_kmeans_round_labels_and_exemplars():
    n = 6
    kpts, desc, ids, truth, places = _scene(n)
    bank, cents, _ = cluster_pseudo_labels(kpts, desc, ids, n, K, seed=0)
    assert bank.valid.all()
    assert torch.equal(bank.labels, torch.arange(K).expand(n, K))
    assert torch.equal(bank.pose_labels, torch.zeros(n, dtype=torch.long))
    slots = _slot_truth(bank, places, n)
    # every slot holds one true landmark in every image (never the
    # distractor), and the K slots are the K landmarks
    assert (slots >= 0).all(), slots
    assert (slots == slots[0]).all(), slots
    assert sorted(slots[0].tolist()) == list(range(K))
    # inference centroids: slot k's centroid is the mean of its true
    # cluster (landmark 0's includes the distractors)
    assert cents['pose_centroids'] is None
    c = cents['centroids']
    assert c.shape == (1, K, D)
    for k, t in enumerate(slots[0].tolist()):
        members = (truth == t) | ((truth == -1) & (t == 0))
        torch.testing.assert_close(c[0, k], desc[members].mean(0))


def test_two_stage_round_recovers_pose_labels_and_aligns_slots():
    n = 8
    kpts, desc, ids, truth, places = _scene(n, two_groups=True, seed=1)
    g = torch.Generator().manual_seed(5)
    group = torch.tensor([0] * (n // 2) + [1] * (n // 2))
    codes = torch.randn(n, 16, generator=g) * 0.1
    codes[:, 0] += group * 10.0
    bank, cents, _ = cluster_pseudo_labels(
        kpts, desc, ids, n, K, codes=codes, num_pose_clusters=2, seed=0)
    u = bank.pose_labels
    # the two pose groups are recovered (up to the cluster numbering)
    assert u[:n // 2].unique().numel() == 1 and u[n // 2:].unique().numel() \
        == 1 and u[0] != u[-1]
    assert torch.equal(bank.labels, u[:, None] * K + torch.arange(K))
    assert torch.equal(bank.codes, codes)
    slots = _slot_truth(bank, places, n)
    # slot k is the same true landmark in both pose clusters
    assert (slots >= 0).all() and (slots == slots[0]).all(), slots
    assert cents['pose_centroids'].shape == (2, 16)
    assert cents['centroids'].shape == (2, K, D)
    # the alignment matters here: stage 2 numbers the clusters of the two
    # pose clusters differently
    tsc = two_stage_clustering(codes, desc, ids, Q=2, K=K, seed=0)
    raw = [tsc.kp_labels[(ids == i) & (truth >= 0)][
        torch.argsort(truth[(ids == i) & (truth >= 0)])] for i in (0, n - 1)]
    assert not torch.equal(raw[0], raw[1]), raw


def test_round_keeps_the_best_of_n_init_kmeans_runs():
    """``n_init`` reaches every K-means of a round (the round's inertia is
    the lowest of the single-seed runs'), and the hook refuses a bad
    value."""
    from mmuld.engine import ClusteringRounds
    g = torch.Generator().manual_seed(0)
    n = 30
    desc = torch.randn(n * 12, 6, generator=g)
    kpts = torch.rand(n * 12, 2, generator=g) * 60
    ids = torch.arange(n).repeat_interleave(12)
    inertia = []
    for seed in range(4):
        _, _, stats = cluster_pseudo_labels(kpts, desc, ids, n, K, seed=seed)
        inertia.append(stats['inertia'])
    _, _, best = cluster_pseudo_labels(kpts, desc, ids, n, K, seed=0,
                                       n_init=4)
    assert best['inertia'] == pytest.approx(min(inertia), rel=1e-5)
    assert best['inertia'] < max(inertia)
    with pytest.raises(ValueError, match='kmeans_n_init'):
        ClusteringRounds(kmeans_n_init=0)
