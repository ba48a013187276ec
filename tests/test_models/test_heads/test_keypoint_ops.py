# Copyright (c) mmuld contributors. All rights reserved.
import math

import pytest
import torch

from mmuld.models.utils import (heatmap_nms, input_to_map_coords,
                                map_to_input_coords, render_gaussian_heatmap,
                                render_gaussian_heatmaps, sample_descriptors)


def _peaks_map():
    hm = torch.zeros(1, 1, 8, 8)
    hm[0, 0, 3, 2] = 0.9  # (x=2, y=3)
    hm[0, 0, 1, 6] = 0.7  # (x=6, y=1)
    hm[0, 0, 3, 3] = 0.5  # neighbour of the first peak -> suppressed
    hm[0, 0, 7, 7] = 0.2  # below threshold
    return hm


def test_heatmap_nms_known_peaks():
    kpts, scores, valid = heatmap_nms(
        _peaks_map(), kernel_size=3, score_thr=0.3, max_keypoints=4)
    assert kpts.shape == (1, 4, 2) and scores.shape == (1, 4)
    assert valid.tolist() == [[True, True, False, False]]
    assert kpts[0, :2].tolist() == [[2.0, 3.0], [6.0, 1.0]]
    assert torch.allclose(scores[0], torch.tensor([0.9, 0.7, 0., 0.]))
    assert kpts[0, 2:].abs().sum() == 0

    # radius=0 (kernel 1) keeps the suppressed neighbour as well
    kpts, scores, valid = heatmap_nms(
        _peaks_map(), radius=0, score_thr=0.3, max_keypoints=4)
    assert valid.sum() == 3
    assert kpts[0, 2].tolist() == [3.0, 3.0]

    # threshold 0.1 adds the corner peak, border=1 removes it again
    _, _, valid = heatmap_nms(_peaks_map(), score_thr=0.1, max_keypoints=4)
    assert valid.sum() == 3
    kpts, _, valid = heatmap_nms(
        _peaks_map(), score_thr=0.1, max_keypoints=4, border=1)
    assert valid.sum() == 2 and kpts[0, :2].tolist() == [[2., 3.], [6., 1.]]


def test_heatmap_nms_batch_truncation_and_padding():
    hm = torch.cat([_peaks_map(), torch.zeros(1, 1, 8, 8)])
    kpts, scores, valid = heatmap_nms(hm, score_thr=0.3, max_keypoints=1)
    assert kpts.shape == (2, 1, 2)
    assert kpts[0, 0].tolist() == [2., 3.] and valid.tolist() == [[True],
                                                                  [False]]
    # more requested keypoints than cells -> padded
    kpts, scores, valid = heatmap_nms(
        torch.rand(2, 1, 2, 2), kernel_size=1, max_keypoints=6)
    assert kpts.shape == (2, 6, 2) and valid[:, 4:].sum() == 0
    assert valid[:, :4].all()


def test_heatmap_nms_bad_input():
    with pytest.raises(ValueError, match='kernel_size'):
        heatmap_nms(_peaks_map(), kernel_size=2)
    with pytest.raises(ValueError, match='heatmap'):
        heatmap_nms(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match='max_keypoints'):
        heatmap_nms(_peaks_map(), max_keypoints=0)


def test_coordinate_conversion_round_trip():
    pts = torch.tensor([[[0., 0.], [7.5, 13.25]]])
    m = input_to_map_coords(pts, 4)
    assert torch.allclose(m[0, 0], torch.tensor([-0.375, -0.375]))
    assert torch.allclose(map_to_input_coords(m, 4), pts)


def _value_map():
    # channel 0 = column index u, channel 1 = 10 * row index v
    v, u = torch.meshgrid(
        torch.arange(4.), torch.arange(4.), indexing='ij')
    return torch.stack([u, 10 * v])[None]  # (1, 2, 4, 4)


def test_sample_descriptors_integer_and_half_pixels():
    stride = 4
    desc = _value_map()
    # map cell (u, v) centre is at input pixel (u + 0.5) * 4 - 0.5
    pts = torch.tensor([[[1.5, 1.5], [4 * 2 + 1.5, 4 * 3 + 1.5], [7.5, 1.5],
                         [9.5, 5.5]]])
    out = sample_descriptors(desc, pts, stride, normalize=False)
    expected = torch.tensor([[0., 0.], [2., 30.], [1.5, 0.], [2., 10.]])
    assert out.shape == (1, 4, 2)
    assert torch.allclose(out[0], expected, atol=1e-5)
    # x = 7.5 -> map x = 1.5 (half way between cells 1 and 2); y = 11.5 ->
    # map y = 2.5
    out = sample_descriptors(
        desc, torch.tensor([[[7.5, 11.5]]]), stride, normalize=False)
    assert torch.allclose(out[0, 0], torch.tensor([1.5, 25.0]), atol=1e-5)

    normed = sample_descriptors(desc, pts, stride)
    assert torch.allclose(normed.norm(dim=-1)[0, 1:], torch.ones(3))
    assert torch.allclose(normed[0, 1],
                          expected[1] / expected[1].norm(), atol=1e-6)


def test_sample_descriptors_bad_input():
    with pytest.raises(ValueError, match='keypoints'):
        sample_descriptors(_value_map(), torch.zeros(1, 3), 4)
    with pytest.raises(ValueError, match='stride'):
        sample_descriptors(_value_map(), torch.zeros(1, 3, 2), 0)


def test_render_gaussian_heatmaps_peak_and_values():
    stride, sigma = 4, 1.5
    # keypoint 0 at map cell (x=5, y=2); keypoint 1 invalid
    kpts = torch.tensor([[[5 * 4 + 1.5, 2 * 4 + 1.5], [3.0, 3.0]]])
    valid = torch.tensor([[True, False]])
    maps = render_gaussian_heatmaps(kpts, valid, (8, 10), stride, sigma)
    assert maps.shape == (1, 2, 8, 10)
    flat_idx = maps[0, 0].argmax()
    assert (flat_idx // 10, flat_idx % 10) == (2, 5)
    assert maps[0, 0, 2, 5] == pytest.approx(1.0)
    assert maps[0, 0, 2, 6] == pytest.approx(math.exp(-1 / (2 * sigma**2)))
    assert maps[0, 0, 3, 6] == pytest.approx(math.exp(-2 / (2 * sigma**2)))
    assert maps[0, 1].abs().sum() == 0

    single = render_gaussian_heatmap(
        torch.tensor([[[1.5, 1.5], [29.5, 29.5]]]), None, 8, stride, sigma)
    assert single.shape == (1, 1, 8, 8)
    assert single[0, 0, 0, 0] == pytest.approx(1.0)
    assert single[0, 0, 7, 7] == pytest.approx(1.0)
    assert single.max() <= 1.0
    empty = render_gaussian_heatmap(torch.zeros(2, 0, 2), None, 4, 1)
    assert empty.shape == (2, 1, 4, 4) and empty.sum() == 0
