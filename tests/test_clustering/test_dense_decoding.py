# Copyright (c) mmuld contributors. All rights reserved.
"""Landmarks at the peaks of centroid similarity maps, on known answers."""
import pytest
import torch
import torch.nn.functional as F

from mmuld.clustering.clustering_round import peak_pseudo_labels
from mmuld.clustering.dense_decoding import (select_peaked_clusters,
                                             similarity_peaks)

STRIDE = 4.0


def _map_with_parts(b=6, h=12, w=12, d=8, seed=0):
    """Descriptor maps of random background with part j (descriptor e_j)
    planted at a known cell of every image; part 2 is planted twice (a
    look-alike pair), part 3 covers a 4x4 region (a plateau)."""
    g = torch.Generator().manual_seed(seed)
    desc = F.normalize(torch.randn(b, d, h, w, generator=g) * 0.3 +
                       torch.eye(d)[-1][None, :, None, None], dim=1)
    # part 0 in the left half, part 1 in the right half of the top rows
    cells = torch.stack([
        torch.stack([torch.randint(2, 5, (b, ), generator=g),
                     torch.randint(2, 6, (b, ), generator=g)], -1),
        torch.stack([torch.randint(6, 10, (b, ), generator=g),
                     torch.randint(2, 6, (b, ), generator=g)], -1)], 1)
    for i in range(b):
        for j in range(2):
            x, y = cells[i, j].tolist()
            desc[i, :, y, x] = torch.eye(d)[j]
        desc[i, :, 1, 1] = torch.eye(d)[2]
        desc[i, :, h - 2, w - 2] = torch.eye(d)[2]
        desc[i, :, h - 5:h - 1, 1:5] = torch.eye(d)[3][:, None, None]
    return desc, cells


def test_peaks_land_on_the_planted_parts_and_margins_rank_them():
    desc, cells = _map_with_parts()
    cents = torch.eye(8)[:4]
    res = similarity_peaks(desc, cents, STRIDE, radius=2 * STRIDE,
                           with_descriptors=True)
    # parts 0 and 1: the planted cell, in input pixels (cell centres)
    for j in range(2):
        expect = (cells[:, j].float() + 0.5) * STRIDE - 0.5
        assert torch.allclose(res['keypoints'][:, j], expect, atol=0.5 *
                              STRIDE)
        assert torch.allclose(res['descriptors'][:, j], cents[j].expand(
            len(desc), -1), atol=1e-6)
    m = res['margin']
    # a single sharp part has a large margin; a look-alike pair and a
    # plateau have none
    assert (m[:, :2] > 0.25).all()
    assert (m[:, 2].abs() < 1e-5).all() and (m[:, 3].abs() < 1e-5).all()
    assert res['valid'].all()
    # a missing (NaN) centroid is invalid and never peaks
    cents[1] = float('nan')
    res = similarity_peaks(desc, cents, STRIDE, radius=2 * STRIDE)
    assert not res['valid'][:, 1].any() and res['valid'][:, 0].all()
    # the border band is skipped
    res = similarity_peaks(desc, torch.eye(8)[2:3], STRIDE, radius=4.0,
                           border=2)
    x = (res['keypoints'][..., 0] + 0.5) / STRIDE - 0.5
    assert (x >= 1.5).all() and (x <= 9.5).all()


def test_selection_keeps_distinct_sharp_centroids():
    n = 20
    kpts = torch.zeros(n, 4, 2)
    kpts[:, 0] = torch.tensor([10., 10.])
    kpts[:, 1] = torch.tensor([11., 10.])  # the same part as 0
    kpts[:, 2] = torch.tensor([40., 30.])
    kpts[:, 3] = torch.tensor([20., 50.])
    margin = torch.tensor([0.5, 0.6, 0.3, 0.01]).expand(n, -1)
    sel = select_peaked_clusters(kpts, margin, 2, separation=5.0)
    assert sel['indices'].tolist() == [1, 2]
    assert sel['duplicates'] == 1 and sel['relaxed'] == 0
    # too few distinct ones: a duplicate fills the last slot
    sel = select_peaked_clusters(kpts[:, :2], margin[:, :2], 2, 5.0)
    assert sel['indices'].tolist() == [1, 0] and sel['relaxed'] == 1


def test_peak_round_chooses_then_keeps_its_landmarks():
    desc, cells = _map_with_parts(b=10)
    calls = []

    def decode(centroids, with_descriptors):
        calls.append(tuple(centroids.shape))
        return similarity_peaks(desc, centroids, STRIDE, 2 * STRIDE,
                                with_descriptors=with_descriptors)

    # candidates (a detector's strongest cells): the parts, the look-alike
    # pair, the plateau and a few background cells of every image
    h, w = desc.shape[-2:]
    picks = []
    for i in range(len(desc)):
        cand = [cells[i, 0].tolist(), cells[i, 1].tolist(), [1, 1],
                [w - 2, h - 2], [2, h - 3], [8, 9], [10, 7]]
        picks += [desc[i, :, y, x] for x, y in cand]
    bank, cents, stats = peak_pseudo_labels(
        torch.stack(picks), len(desc), 2, decode, overcluster=3,
        separation=STRIDE, n_init=3)
    # the two sharp single parts are the landmarks, at their cells
    found = {int(torch.argmax(c)) for c in cents['centroids'][0]}
    assert found == {0, 1}, cents['centroids'][0]
    assert bank.valid.all() and stats['relaxed'] == 0
    expect = (cells.float() + 0.5) * STRIDE - 0.5
    order = cents['centroids'][0].argmax(1)
    assert torch.allclose(bank.keypoints, expect[:, order], atol=0.5 *
                          STRIDE)
    # a later round starts from those centroids: no K-means, same parts
    calls.clear()
    bank2, cents2, _ = peak_pseudo_labels(
        torch.stack(picks), len(desc), 2, decode,
        init_centroids=cents['centroids'][0], refine_steps=1)
    assert calls == [(2, 8), (2, 8)]
    assert torch.allclose(bank2.keypoints, bank.keypoints)
    # two-stage: per pose cluster centroids, landmark ids kept
    codes = torch.cat([torch.zeros(5, 3), torch.ones(5, 3)])
    bank3, cents3, stats3 = peak_pseudo_labels(
        torch.stack(picks), len(desc), 2, decode, codes=codes,
        num_pose_clusters=2, init_centroids=cents['centroids'][0])
    assert cents3['centroids'].shape == (2, 2, 8)
    assert sorted(bank3.pose_labels.bincount().tolist()) == [5, 5]
    assert torch.allclose(bank3.keypoints, bank.keypoints)
    assert ((bank3.labels // 2) == bank3.pose_labels[:, None]).all()


def _drifting_world(seed, b=40, h=12, w=12, d=10):
    """A part at cell (3, 4) of every image whose descriptor is the
    landmark's direction e0 plus an image-specific nuisance, weaker in some
    images than in others, and a look-alike at cell (7, 6): mostly e1, with
    enough e0 that the part's centroid prefers it in a few images."""
    g = torch.Generator().manual_seed(seed)
    e = torch.eye(d)
    desc = F.normalize(torch.randn(b, d, h, w, generator=g) * 0.2 +
                       3 * e[-1][None, :, None, None], dim=1)
    for i in range(b):
        s = 0.55 + 1.5 * torch.rand(1, generator=g).item()
        desc[i, :, 4, 3] = F.normalize(
            s * e[0] + e[2 + i % 5] + 0.1 * torch.randn(d, generator=g), dim=0)
        desc[i, :, 6, 7] = F.normalize(
            0.8 * e[0] + e[1] + 0.1 * torch.randn(d, generator=g), dim=0)
    part = (torch.tensor([3., 4.]) + 0.5) * STRIDE - 0.5
    return desc, part


def test_centroids_refined_at_their_anchors_do_not_drift():
    """Re-estimating a centroid as the mean descriptor at its own peaks
    compounds: the look-alike's share of the mean draws more images to it,
    round after round, until the landmark has left the part. Re-estimated
    at the anchors (the keypoints of the round that chose the landmark),
    the centroid cannot wander from where it was chosen."""
    from mmuld.models.utils.keypoint_ops import sample_descriptors
    for seed in (0, 1, 2):
        desc, part = _drifting_world(seed)
        n = len(desc)

        def decode(c, with_descriptors):
            return similarity_peaks(desc, c, STRIDE, 2 * STRIDE,
                                    with_descriptors=with_descriptors)

        def sample(points):
            return sample_descriptors(desc, points, STRIDE)

        cand = torch.stack([desc[i, :, 4, 3] for i in range(n)])
        init = torch.eye(10)[:1]
        anchors = decode(init, False)['keypoints']
        on_part = {}
        for mode in ('peaks', 'anchors'):
            cents, shares = init, []
            for _ in range(6):
                bank, out, _ = peak_pseudo_labels(
                    cand, n, 1, decode, init_centroids=cents,
                    anchors=anchors if mode == 'anchors' else None,
                    sample=sample)
                cents = out['centroids'][0]
                shares.append(float(
                    ((bank.keypoints[:, 0] - part).norm(dim=-1) < 2).float()
                    .mean()))
                # the anchors travel with the bank from round to round
                if mode == 'anchors':
                    assert torch.equal(bank.anchors, anchors)
            on_part[mode] = shares
        assert on_part['peaks'][0] >= 0.65, on_part
        assert on_part['peaks'][-1] < 0.1, on_part
        assert min(on_part['anchors']) >= 0.65, on_part
        assert max(on_part['anchors']) - min(on_part['anchors']) < 1e-6


def test_the_round_that_chooses_the_landmarks_sets_the_anchors():
    desc, cells = _map_with_parts(b=10)

    def decode(centroids, with_descriptors):
        return similarity_peaks(desc, centroids, STRIDE, 2 * STRIDE,
                                with_descriptors=with_descriptors)

    h, w = desc.shape[-2:]
    picks = []
    for i in range(len(desc)):
        for x, y in (cells[i, 0].tolist(), cells[i, 1].tolist(), [1, 1],
                     [8, 9]):
            picks.append(desc[i, :, y, x])
    bank, cents, _ = peak_pseudo_labels(
        torch.stack(picks), len(desc), 2, decode, overcluster=2,
        separation=STRIDE, n_init=3)
    assert torch.equal(bank.anchors, bank.keypoints)
    # anchors of another training set (or another K) are refused
    with pytest.raises(ValueError, match='training set or K changed'):
        peak_pseudo_labels(
            torch.stack(picks), len(desc), 2, decode,
            init_centroids=cents['centroids'][0], anchors=bank.anchors[:5],
            sample=lambda p: p)
