# Copyright (c) mmuld contributors. All rights reserved.
import numpy as np
import pytest

from mmuld.evaluation.functional import (INTEROCULAR_PRESETS,
                                         forward_backward_nme,
                                         interocular_distance)
from mmuld.testing import oracle_ridge


def _faces(n, seed=0):
    """Random 5-point faces: mean shape + per-image similarity + jitter."""
    rng = np.random.default_rng(seed)
    mean = np.array([[30., 40.], [70., 40.], [50., 60.], [35., 80.],
                     [65., 80.]])
    out = []
    for _ in range(n):
        s = rng.uniform(0.8, 1.2)
        a = rng.uniform(-0.3, 0.3)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        t = rng.uniform(-10, 10, size=2)
        pts = (mean - 50) @ r.T * s + 50 + t + rng.normal(0, 1.0, (5, 2))
        out.append(pts)
    return np.stack(out)


def _split(x, n_tr):
    return x[:n_tr], x[n_tr:]


def test_interocular_distance():
    gt = np.zeros((2, 68, 2))
    gt[:, 41] = [10, 0]
    gt[:, 46] = [40, 0]
    gt[:, 36:41, 0] += 5
    np.testing.assert_allclose(interocular_distance(gt, '68_mallis'), 30)
    # eye centres: mean of 36-41 is x=(5*5+10)/6, of 42-47 is 40/6
    np.testing.assert_allclose(
        interocular_distance(gt, '68_centres'), abs(35 / 6 - 40 / 6))
    gt5 = _faces(3)
    d = interocular_distance(gt5, 0, 1)
    np.testing.assert_allclose(d, np.linalg.norm(gt5[:, 0] - gt5[:, 1],
                                                 axis=-1))
    assert set(INTEROCULAR_PRESETS) >= {'mafl5', '68_mallis', '68_centres'}
    with pytest.raises(ValueError, match='out of range'):
        interocular_distance(gt5, 0, 7)
    with pytest.raises(ValueError, match='preset'):
        interocular_distance(gt5, 'nope')


def test_identity_gives_zero_error():
    gt = _faces(80)
    gtr, gte = _split(gt, 60)
    norm = interocular_distance(gte, 0, 1)
    res = forward_backward_nme(gtr, gtr, gte, gte, norm)
    # the protocol's penalties (1e-3 / 1e-1 relative to the Gram max)
    # leave a shrinkage residual only; backward's 0.1 shrinks noticeably
    assert res['forward'] < 0.5
    mean_shape = (np.linalg.norm(gte - gtr.mean(0), axis=-1).mean(1) /
                  norm).mean() * 100
    assert res['backward'] < 0.5 * mean_shape
    res = forward_backward_nme(gtr, gtr, gte, gte, norm,
                               backward_alpha=1e-6)
    assert res['backward'] < 0.05
    assert res['forward_per_image'].shape == (20, )
    assert res['backward_per_landmark'].shape == (5, )


def test_affine_discovered_points_give_zero_forward():
    gt = _faces(120, seed=1)
    a = np.array([[0.5, 0.2], [-0.1, 0.7]])
    disc = gt @ a.T + np.array([3.0, -7.0])
    # more discovered points than GT (duplicate transformed copies)
    disc = np.concatenate([disc, disc[:, :3] * 1.5 + 2], axis=1)
    gtr, gte = _split(gt, 100)
    dtr, dte = _split(disc, 100)
    res = forward_backward_nme(dtr, gtr, dte, gte,
                               interocular_distance(gte, 0, 1),
                               forward_alpha=1e-8, backward_alpha=1e-8)
    assert res['forward'] < 1e-3
    assert res['backward'] < 1e-3


def test_noise_gives_mean_shape_error_and_grows_with_noise():
    gt = _faces(400, seed=2)
    gtr, gte = _split(gt, 300)
    norm = interocular_distance(gte, 0, 1)
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 100, size=(400, 8, 2))
    res = forward_backward_nme(noise[:300], gtr, noise[300:], gte, norm)
    mean_shape_err = (np.linalg.norm(gte - gtr.mean(0), axis=-1).mean(1) /
                      norm).mean() * 100
    assert res['forward'] == pytest.approx(mean_shape_err, rel=0.1)

    errs = []
    for sigma in (0.0, 2.0, 6.0, 15.0):
        disc = gt + rng.normal(0, sigma, gt.shape) if sigma else gt.copy()
        r = forward_backward_nme(disc[:300], gtr, disc[300:], gte, norm)
        errs.append((r['forward'], r['backward']))
    fwd, bwd = zip(*errs)
    assert all(np.diff(fwd) > 0) and all(np.diff(bwd) > 0)


def test_masked_landmarks():
    gt = _faces(200, seed=3)
    disc = gt.copy()
    valid = np.ones((200, 5), dtype=bool)
    valid[::4, 2] = False
    disc[~valid] = 1e4  # garbage where invalid: must be ignored
    gtr, gte = _split(gt, 150)
    res = forward_backward_nme(
        disc[:150], gtr, disc[150:], gte, interocular_distance(gte, 0, 1),
        pred_train_valid=valid[:150], pred_test_valid=valid[150:],
        backward_alpha=1e-6)
    assert res['forward'] < 10
    assert res['backward'] < 0.05
    # NaN coordinates are treated as invalid too
    disc_nan = disc.copy()
    disc_nan[~valid] = np.nan
    res2 = forward_backward_nme(disc_nan[:150], gtr, disc_nan[150:], gte,
                                interocular_distance(gte, 0, 1),
                                backward_alpha=1e-6)
    assert res2['backward'] == pytest.approx(res['backward'])


def test_repeats_subsets_and_errors():
    gt = _faces(100, seed=4)
    disc = gt + np.random.default_rng(1).normal(0, 3, gt.shape)
    norm = interocular_distance(gt[80:], 0, 1)
    r = forward_backward_nme(disc[:80], gt[:80], disc[80:], gt[80:], norm,
                             n_repeats=3, n_fit=20, seed=1)
    r2 = forward_backward_nme(disc[:80], gt[:80], disc[80:], gt[80:], norm,
                              n_repeats=3, n_fit=20, seed=1)
    assert r['n_fit'] == 20 and r['forward'] == r2['forward']
    with pytest.raises(ValueError, match='norm_test'):
        forward_backward_nme(disc[:80], gt[:80], disc[80:], gt[80:],
                             norm[:3])
    with pytest.raises(ValueError, match='at least 2'):
        forward_backward_nme(disc[:1], gt[:1], disc[80:], gt[80:], norm)
    with pytest.raises(ValueError, match='shape'):
        forward_backward_nme(disc[:80, :, 0], gt[:80], disc[80:], gt[80:],
                             norm)


def oracle_nme(pred_tr, gt_tr, pred_te, gt_te, norm, fa, ba):
    """Forward / backward NME (%) with every landmark valid."""
    n, m = len(pred_tr), len(pred_te)
    y_hat = oracle_ridge(pred_tr.reshape(n, -1), gt_tr.reshape(n, -1),
                         pred_te.reshape(m, -1), fa).reshape(gt_te.shape)
    x_hat = oracle_ridge(gt_tr.reshape(n, -1), pred_tr.reshape(n, -1),
                         gt_te.reshape(m, -1), ba).reshape(pred_te.shape)
    fwd = np.linalg.norm(y_hat - gt_te, axis=-1) / norm[:, None]
    bwd = np.linalg.norm(x_hat - pred_te, axis=-1) / norm[:, None]
    return fwd.mean() * 100, bwd.mean() * 100


@pytest.mark.parametrize('scale', [1.0, 40.0])
def test_ridge_penalty_relative_to_gram_max(scale):
    """Equal to a closed-form oracle with the relative penalty, at the
    protocol's alphas; and so invariant to the unit of the coordinates
    (an absolute penalty is not)."""
    gt = _faces(60, seed=5) * scale
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, (7, 5))
    disc = np.einsum('kg,ngc->nkc', a, gt) / 3 + rng.normal(
        0, 4 * scale, (60, 7, 2))
    gtr, gte = _split(gt, 45)
    dtr, dte = _split(disc, 45)
    norm = interocular_distance(gte, 0, 1)
    res = forward_backward_nme(dtr, gtr, dte, gte, norm)
    fwd, bwd = oracle_nme(dtr, gtr, dte, gte, norm, 1e-3, 1e-1)
    assert res['forward'] == pytest.approx(fwd, rel=1e-6)
    assert res['backward'] == pytest.approx(bwd, rel=1e-6)
    # the protocol's backward penalty shrinks visibly: an unpenalised fit
    # gives a clearly different value
    _, bwd_free = oracle_nme(dtr, gtr, dte, gte, norm, 1e-3, 0.0)
    assert abs(bwd - bwd_free) > 0.05 * bwd
