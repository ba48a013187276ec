# Copyright (c) mmuld contributors. All rights reserved.
"""Part coverage on known answers: the accuracy of every part, the worst
part, the spread of the landmarks and the hit threshold."""
import numpy as np
import pytest

from mmuld.evaluation import RegressionNMEMetric
from mmuld.evaluation.functional import (landmark_spread, part_coverage,
                                         per_landmark_accuracy)

NAMES = ['left_eye', 'right_eye', 'nose', 'left_mouth', 'right_mouth']


def _faces(n=60, seed=0):
    """Faces with an inter-ocular distance of exactly 20 pixels."""
    rng = np.random.default_rng(seed)
    base = np.array([[-10, -8], [10, -8], [0, 4], [-8, 14], [8, 14]], float)
    ang = rng.uniform(-0.4, 0.4, n)
    rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)],
                   -1).reshape(n, 2, 2)
    return base @ rot.transpose(0, 2, 1) + rng.uniform(30, 90, (n, 1, 2))


def test_every_part_found_and_one_part_missed():
    gt = _faces()
    norm = np.full(len(gt), 20.0)
    rng = np.random.default_rng(1)
    # K = 10: one landmark near each part (within 0.1 normalisers) and
    # five more spread over the face
    near = gt + rng.normal(0, 0.5, gt.shape)
    extra = gt.mean(1, keepdims=True) + rng.uniform(-15, 15, (len(gt), 5, 2))
    pred = np.concatenate([near, extra], 1)
    cov = part_coverage(pred, gt, norm, NAMES)
    assert cov['all_parts_found'] and cov['parts_found'] == 5
    assert min(cov['part_accuracy'].values()) > 0.95
    assert 0.7 < cov['spread'] < 1.5
    # the right mouth corner gets no landmark: its landmark moves onto the
    # nose, and no other landmark is near the mouth corner
    missed = pred.copy()
    missed[:, 4] = gt[:, 2] + 1.0
    missed[:, 5:] = gt[:, :1] + rng.normal(0, 0.5, (len(gt), 5, 2))
    cov = part_coverage(missed, gt, norm, NAMES)
    assert not cov['all_parts_found'] and cov['parts_found'] == 4
    assert cov['worst_part'] == 'right_mouth'
    assert cov['worst_part_accuracy'] < 0.05
    assert cov['part_accuracy']['left_eye'] > 0.95


def test_spread_tells_bunched_from_covering_landmarks():
    gt = _faces()
    rng = np.random.default_rng(2)
    bunch = gt[:, 2:3] + rng.normal(0, 1.0, (len(gt), 10, 2))
    spread = np.concatenate([gt, gt[:, ::-1] + 2.0], 1)
    assert landmark_spread(bunch, gt) < 0.15
    assert landmark_spread(spread, gt) == pytest.approx(1.0, abs=0.1)
    # invalid landmarks do not count
    valid = np.ones((len(gt), 10), bool)
    valid[:, 1:] = False
    assert np.isnan(landmark_spread(spread, gt, valid))


def _offset_predictions(gt, offsets):
    """Landmark j = GT point j moved by ``offsets[j]`` normalisers along x
    (the normaliser is 20 pixels)."""
    pred = gt.copy()
    pred[..., 0] += np.asarray(offsets)[None] * 20.0
    return pred


def test_hit_threshold_directly():
    gt = _faces()
    pred = _offset_predictions(gt, [0.15, 0.3, 0.0, 0.0, 0.0])
    acc = per_landmark_accuracy(pred, gt, np.full(len(gt), 20.0), thr=0.2)
    np.testing.assert_allclose(acc['gt_accuracy'], [1, 0, 1, 1, 1])
    cov = part_coverage(pred, gt, np.full(len(gt), 20.0), NAMES)
    assert cov['part_accuracy']['left_eye'] == 1.0
    assert cov['part_accuracy']['right_eye'] == 0.0
    assert cov['worst_part'] == 'right_eye'


def test_hit_threshold_through_the_metric():
    gt = _faces(40)
    pred = _offset_predictions(gt, [0.15, 0.3, 0.0, 0.0, 0.0])
    samples = [
        dict(img_path=f'img_{i}.png', img_id=i,
             uld_split='train' if i < 20 else 'test',
             gt_instances=dict(keypoints=gt[i][None].astype(np.float32)),
             pred_instances=dict(keypoints=pred[i][None],
                                 keypoints_visible=np.ones((1, 5))))
        for i in range(len(gt))
    ]
    metric = RegressionNMEMetric(save_outputs=False)
    metric.dataset_meta = {}
    metric.process([], samples)
    res = metric.evaluate(len(samples))
    # the default threshold is 0.2: 0.15 is a hit, 0.3 a miss
    assert res['uld/per_landmark_acc'] == pytest.approx(0.8)
