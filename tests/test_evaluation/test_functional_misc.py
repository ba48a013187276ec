# Copyright (c) mmuld contributors. All rights reserved.
import numpy as np
import pytest

from mmuld.evaluation.functional import (ced_auc, ced_curve, cluster_quality,
                                         cumulative_landmark_curve,
                                         equivariance_error,
                                         per_landmark_accuracy, yaw_breakdown)


def test_ced_monotonic_and_auc():
    rng = np.random.default_rng(0)
    errors = np.abs(rng.normal(4, 2, 200))
    errors[:5] = np.nan
    thr, frac = ced_curve(errors, 10, 51)
    assert thr.shape == frac.shape == (51, )
    assert np.all(np.diff(frac) >= 0)
    assert frac[-1] <= 1 - 5 / 200 + 1e-12
    assert frac[0] == 0
    auc = ced_auc(thr, frac)
    assert 0 < auc < 1
    # smaller errors -> larger AUC
    assert ced_auc(*ced_curve(errors / 2, 10, 51)) > auc
    thr0, frac0 = ced_curve(np.zeros(10), 10, 11)
    assert ced_auc(thr0, frac0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ced_curve(np.array([]))


def test_cumulative_landmark_curve():
    c = cumulative_landmark_curve(np.array([3., 1., np.nan, 2.]))
    np.testing.assert_allclose(c, [1, 1.5, 2])


def test_per_landmark_accuracy_hand_made():
    # 4 images, 3 GT landmarks, norm 10 -> threshold 2 px.
    gt = np.tile(np.array([[0., 0.], [10., 0.], [5., 8.]]), (4, 1, 1))
    norm = np.full(4, 10.)
    pred = np.zeros((4, 2, 2))
    pred[:, 0] = gt[:, 2] + [1.0, 0.]  # always near GT 2
    pred[:, 1] = gt[:, 0]  # near GT 0 ...
    pred[0, 1] = [50., 50.]  # ... except on image 0
    res = per_landmark_accuracy(pred, gt, norm, thr=0.2)
    assert res['assignment'].tolist() == [2, 0]
    np.testing.assert_allclose(res['gt_accuracy'], [0.75, 0.0, 1.0])
    np.testing.assert_allclose(res['pred_accuracy'], [1.0, 0.75])
    assert res['mean'] == pytest.approx(1.75 / 3)
    # invalid landmark counts as a miss
    valid = np.ones((4, 2), bool)
    valid[1, 0] = False
    res = per_landmark_accuracy(pred, gt, norm, pred_valid=valid)
    assert res['gt_accuracy'][2] == pytest.approx(0.75)


def test_cluster_quality():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (4, 8))
    labels = np.repeat(np.arange(4), 50)
    x = centres[labels] + rng.normal(0, 0.5, (200, 8))
    good = cluster_quality(x, labels)
    bad = cluster_quality(x, rng.permutation(labels))
    assert good['silhouette'] > 0.8 > bad['silhouette']
    assert good['calinski_harabasz'] > bad['calinski_harabasz']
    sub = cluster_quality(x, labels, max_silhouette_samples=60)
    assert sub['silhouette'] > 0.8
    single = cluster_quality(x, np.zeros(200, int))
    assert np.isnan(single['silhouette'])


def test_equivariance_error_rotation():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 100, (3, 6, 2))
    ang = np.deg2rad(30)
    m = np.array([[np.cos(ang), -np.sin(ang), 5.],
                  [np.sin(ang), np.cos(ang), -3.]])
    q = p @ m[:, :2].T + m[:, 2]
    res = equivariance_error(p, q, m)
    assert res['mean'] < 1e-9
    q2 = q + np.array([3., 4.])
    res = equivariance_error(p, q2, m, norm=np.full(3, 50.))
    assert res['mean'] == pytest.approx(10.0)
    assert res['per_landmark'].shape == (6, )


def test_yaw_breakdown():
    errors = np.array([1., 2., 3., 4., 5.])
    yaws = np.array([-80., -45., 0., 10., 90.])
    out = yaw_breakdown(errors, yaws)
    assert [b['count'] for b in out] == [1, 1, 2, 0, 1]
    assert out[2]['mean'] == pytest.approx(3.5)
    assert np.isnan(out[3]['mean'])
    with pytest.raises(ValueError):
        yaw_breakdown(errors, yaws[:2])
