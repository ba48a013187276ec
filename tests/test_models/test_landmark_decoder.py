# Copyright (c) mmuld contributors. All rights reserved.
"""The landmark decoder shared by both estimators, on known answers."""
import pytest
import torch

from mmuld.models.pose_estimators.landmark_decoder import LandmarkDecoder
from mmuld.models.pose_estimators.uld_cfg import ULDTestCfg, ULDTrainCfg


def _onehot(idx, dim=8):
    return torch.nn.functional.one_hot(torch.as_tensor(idx), dim).float()


def test_exemplar_per_pose_cluster():
    """Each image decodes with its own pose cluster's centroids: the same
    candidates give different landmarks under different pose labels."""
    # candidate j of both images has descriptor e_j, at x = 10 * j
    kpts = torch.stack([torch.arange(4.) * 10, torch.zeros(4)], -1)
    kpts = kpts.expand(2, 4, 2).clone()
    desc = _onehot(range(4), 4).expand(2, 4, 4).clone()
    # pose 0: landmark 0 is e_1, landmark 1 is e_3; pose 1: the reverse
    cents = torch.stack([_onehot([1, 3], 4), _onehot([3, 1], 4)])
    res = LandmarkDecoder(stride=4)(cents, kpts, desc, None,
                                    pose=torch.tensor([0, 1]))
    assert res['keypoints'][0, :, 0].tolist() == [10., 30.]
    assert res['keypoints'][1, :, 0].tolist() == [30., 10.]
    assert res['visible'].all() and res['pose_labels'].tolist() == [0, 1]
    # without scores an exemplar's score is exp(-d^2): 1 on the centroid
    torch.testing.assert_close(res['scores'], torch.ones(2, 2))


def test_invalid_candidates_are_never_landmarks():
    kpts = torch.tensor([[[0., 0.], [5., 5.]]])
    desc = _onehot([0, 0], 2)[None]
    cents = _onehot([0, 1], 2)[None]
    valid = torch.tensor([[False, True]])
    res = LandmarkDecoder(stride=4)(cents, kpts, desc, valid)
    # landmark 0: the only valid candidate; landmark 1: no candidate is
    # nearest to it, so it is not visible
    assert res['keypoints'][0, 0].tolist() == [5., 5.]
    assert res['visible'][0].tolist() == [1., 0.]


def test_peaks_mode_finds_each_centroid_on_the_map():
    desc_map = torch.zeros(1, 3, 8, 8)
    desc_map[0, 2] = 1.0
    desc_map[0, :, 2, 5] = torch.tensor([1., 0., 0.])  # landmark 0
    desc_map[0, :, 6, 3] = torch.tensor([0., 1., 0.])  # landmark 1
    cents = torch.eye(3)[None, :2]
    res = LandmarkDecoder(stride=4, mode='peaks')(
        cents, torch.zeros(1, 1, 2), torch.zeros(1, 1, 3), None,
        desc_map=desc_map)
    cells = ((res['keypoints'][0] + 0.5) / 4 - 0.5).round()
    assert cells.tolist() == [[5., 2.], [3., 6.]]


def test_zeroshot_and_uld_decode_alike(tmp_path):
    """Both estimators call the same decoder: same centroids, candidates
    and descriptors give the same landmarks."""
    from mmuld.models.pose_estimators.zeroshot_estimator import \
        ZeroShotEstimator
    g = torch.Generator().manual_seed(0)
    kpts = torch.rand(3, 20, 2, generator=g) * 60
    desc = torch.nn.functional.normalize(
        torch.randn(3, 20, 8, generator=g), dim=-1)
    cents = torch.nn.functional.normalize(torch.randn(5, 8, generator=g),
                                          dim=-1)
    zs = ZeroShotEstimator.__new__(ZeroShotEstimator)
    torch.nn.Module.__init__(zs)
    zs.register_buffer('zs_centroids', cents)
    zs.backbone = type('B', (), {'out_stride': 4})()
    zs._check_fitted = lambda: None
    got = zs.assign_landmarks(kpts, desc)
    ref = LandmarkDecoder(4)(cents[None], kpts, desc, None)
    for key in ('keypoints', 'scores', 'visible', 'descriptors'):
        torch.testing.assert_close(got[key], ref[key])


def test_unknown_and_bad_options_are_refused():
    with pytest.raises(ValueError, match=r"unknown keys \['score_thresh'\]"):
        ULDTestCfg.from_cfg(dict(score_thresh=0.2), 'test_cfg')
    with pytest.raises(ValueError, match='known keys'):
        ULDTrainCfg.from_cfg(dict(sigmaa=1.0), 'train_cfg')
    with pytest.raises(ValueError, match='candidates'):
        ULDTestCfg.from_cfg(dict(candidates='grid'), 'test_cfg')
    with pytest.raises(ValueError, match='decode'):
        ULDTestCfg.from_cfg(dict(decode='argmax'), 'test_cfg')
    with pytest.raises(ValueError, match='decode'):
        LandmarkDecoder(4, mode='argmax')
    cfg = ULDTestCfg.from_cfg(dict(score_thr=0.3), 'test_cfg')
    # mmpose's dict reading still works
    assert cfg.get('score_thr') == 0.3 and cfg.get('nms_kernel') == 5
    assert cfg.num_min_keypoints(10) == 10
