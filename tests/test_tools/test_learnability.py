# Copyright (c) mmuld contributors. All rights reserved.
"""Scoring of the learnability benchmark (the run itself:
tests/test_engine/test_learning.py)."""
import numpy as np
import pytest

from mmuld.evaluation import learnability as L


def test_scores_against_known_answers():
    """The scoring code gives the known answer on hand-made predictions."""
    rng = np.random.default_rng(0)
    n, m = 40, 10
    gt = rng.uniform(20, 100, (n + m, 5, 2))
    crop = np.tile([0., 0., 128., 128.], (n + m, 1))

    def split(pred, sl):
        return dict(pred=pred[sl], valid=np.ones(pred[sl].shape[:2], bool),
                    gt=gt[sl], crop=crop[sl], paths=[''] * len(gt[sl]))

    band = np.full(m, 8.0)
    # landmarks = the GT itself (plus a fixed offset): perfect discovery
    exact = np.concatenate([gt, gt + 3], 1)
    r = L.score(split(exact, slice(0, n)), split(exact, slice(n, None)),
                band)
    # only the ridge penalty of the protocol separates forward from 0
    assert r['forward'] < 0.5
    assert r['per_landmark_accuracy_mean'] == 1.0
    rand = L.random_points_baseline(split(exact, slice(0, n)),
                                    split(exact, slice(n, None)), 10, band)
    assert rand['forward'] > 10 * r['forward'] + 10
    assert rand['backward'] > 2 * r['backward']
    # points in the outer band are counted as border points
    edge = exact.copy()
    edge[n:, :5] = [2.0, 64.0]
    r = L.score(split(edge, slice(0, n)), split(edge, slice(n, None)), band)
    assert r['border_fraction'] == pytest.approx(0.5)
    # the mean shape of identical faces is exact
    same = np.repeat(gt[:1], n + m, 0)
    tr = dict(gt=same[:n], crop=crop[:n])
    te = dict(gt=same[n:], crop=crop[n:])
    assert L.mean_shape_baseline(tr, te) == pytest.approx(0.0, abs=1e-9)
