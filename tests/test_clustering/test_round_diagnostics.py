# Copyright (c) mmuld contributors. All rights reserved.
"""Clustering-round diagnostics: a collapse is visible where it happens."""
import numpy as np
import torch

from mmuld.clustering.clustering_round import (cluster_pseudo_labels,
                                               health_warnings,
                                               round_diagnostics)
from mmuld.models.utils.border import near_border, valid_input_box


def test_known_counts():
    ids = torch.tensor([0, 0, 0, 1, 2, 2])
    labels = torch.tensor([0, 1, 1, 1, 2, 1])
    border = torch.tensor([True, False, False, False, True, True])
    d = round_diagnostics(ids, 4, labels, 3, border)
    assert d['keypoints'] == 6
    assert d['kpts_per_image_mean'] == 1.5 and d['kpts_per_image_min'] == 0
    assert d['border_share'] == 0.5
    assert d['cluster_size_min'] == 1 and d['cluster_size_max'] == 4


def test_collapse_and_border_lock_are_warned():
    stats = dict(kpts_per_image_mean=1.05, border_share=0.9,
                 cluster_size_min=0.0)
    msgs = health_warnings(stats, num_landmarks=10)
    assert len(msgs) == 3
    assert 'collapsed' in msgs[0] and '90%' in msgs[1]
    healthy = dict(kpts_per_image_mean=14.0, border_share=0.02,
                   cluster_size_min=30.0)
    assert health_warnings(healthy, 10) == []


def test_round_reports_the_diagnostics():
    g = torch.Generator().manual_seed(0)
    n, k = 6, 3
    centres = torch.eye(k, 8) * 5
    desc = torch.cat([centres + 0.1 * torch.randn(k, 8, generator=g)
                      for _ in range(n)])
    ids = torch.arange(n).repeat_interleave(k)
    kpts = torch.rand(n * k, 2, generator=g) * 64
    _, _, stats = cluster_pseudo_labels(
        kpts, desc, ids, n, k, near_border=torch.zeros(n * k, dtype=bool))
    assert stats['kpts_per_image_mean'] == k
    assert stats['cluster_size_min'] == stats['cluster_size_max'] == n
    assert stats['border_share'] == 0.0


def test_border_band_and_padding_box():
    # a 100x50 image in a 64x64 input: the crop 100x100 pads 25 px above
    # and below (mmpose's aspect fix), i.e. 16 input px
    meta = dict(input_size=(64, 64), input_center=np.array([49.5, 24.5]),
                input_scale=np.array([100., 100.]), ori_shape=(50, 100))
    box = valid_input_box(meta)
    np.testing.assert_allclose(box[[0, 2]], [0.0, 63.5], atol=0.05)
    np.testing.assert_allclose(box[[1, 3]], [16.0, 48.0], atol=0.05)
    pts = torch.tensor([[32., 32.], [32., 18.], [32., 24.5], [1., 32.],
                        [32., 5.]])
    near = near_border(pts, box, stride=4)
    assert near.tolist() == [False, True, False, True, True]
