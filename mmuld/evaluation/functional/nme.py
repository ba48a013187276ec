# Copyright (c) mmuld contributors. All rights reserved.
"""Forward / backward NME for unsupervised landmark discovery (ULD).

Re-implementation of the protocol of Mallis et al. (TPAMI 2023), public
evaluator ``Evaluators/evalCelebA.py`` + ``utils.py`` of
``dimitrismallis/KeypointsToLandmarks``, which D-ULD / D-ULD++ (CVPR 2024)
follow. Facts taken from that source (they override any summary):

* The regressor is the closed-form ridge ``'type2'`` of ``train_regressor``:
  inputs and targets are centred (i.e. an intercept is fitted) and the
  penalty is ``alpha * max(X_c^T X_c)`` -- the regularisation is *relative*
  to the largest entry of the centred Gram matrix, which makes the result
  independent of the image size. We solve exactly the same problem with
  :class:`sklearn.linear_model.Ridge` (``fit_intercept=True``,
  ``alpha = alpha_rel * max(X_c^T X_c)``).
* Forward: discovered (N, 2K) -> GT (N, 2G), alpha 1e-3 (MAFL). Error per
  image = mean over GT landmarks of ``||y_hat - y|| / iod``.
* Backward: GT -> discovered, alpha 1e-1. Error per image = mean over
  discovered landmarks of ``||x_hat - x|| / iod``; the normaliser comes from
  the *GT* landmarks of the image.
* The training subset is ``permutation(N_train)[:n + 1]`` (``n + 1`` images;
  we use exactly ``n_fit`` images) and errors are averaged over ``nrepeats``
  random subsets (10 in the paper's stage-2 evaluation).
* Missing discovered landmarks (``NaN`` in the source): forward fills the
  training set with the column mean followed by SVT matrix completion and
  the test set with the training column mean; we fill both with the
  training column mean (no SVT). Backward (``bwd_withNan_calculation``)
  fits one regressor per discovered landmark on the training images where
  that landmark exists and evaluates it on the test images where it exists;
  we do the same, so invalid landmarks never enter the backward error.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

Index = Union[int, Sequence[int]]

#: Preset normalisation indices (``left``, ``right``); a sequence means the
#: mean of these points (e.g. an eye centre from its contour).
INTEROCULAR_PRESETS: Dict[str, Tuple[Index, Index]] = {
    # MAFL / CelebA 5 points: left eye centre, right eye centre.
    'mafl5': (0, 1),
    # Mallis et al. evaluator for 68 points (0-based 41 and 46 = 1-based 42
    # and 47): the lower-lid points next to the outer eye corners, NOT the
    # outer corners (36/45) nor the eye centres. Use to reproduce their
    # numbers on 68-point GT.
    '68_mallis': (41, 46),
    # 300W convention (outer eye corners), as mmpose's NME metric.
    '68_outer': (36, 45),
    # Eye centres = mean of the six eye-contour points; consistent with the
    # 5-point eye-centre definition.
    '68_centres': (tuple(range(36, 42)), tuple(range(42, 48))),
}


def _point(gt: np.ndarray, idx: Index) -> np.ndarray:
    if isinstance(idx, (int, np.integer)):
        return gt[..., int(idx), :]
    idx = list(idx)
    if not idx:
        raise ValueError('Empty index list for a normalisation point.')
    return gt[..., idx, :].mean(axis=-2)


def interocular_distance(gt: np.ndarray,
                         left_idx: Union[Index, str] = 0,
                         right_idx: Optional[Index] = 1) -> np.ndarray:
    """Inter-ocular distance of GT landmarks.

    Args:
        gt (np.ndarray): GT landmarks, (G, 2) or (N, G, 2).
        left_idx (int | Sequence[int] | str): Index of the left eye point or
            indices whose mean is the eye centre. A key of
            :data:`INTEROCULAR_PRESETS` selects both indices.
        right_idx (int | Sequence[int], optional): Same for the right eye.

    Returns:
        np.ndarray: Distances, shape () or (N,).
    """
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim not in (2, 3) or gt.shape[-1] != 2:
        raise ValueError(f'gt must be (G, 2) or (N, G, 2), got {gt.shape}.')
    if isinstance(left_idx, str):
        if left_idx not in INTEROCULAR_PRESETS:
            raise ValueError(f'Unknown interocular preset {left_idx!r}; '
                             f'known: {sorted(INTEROCULAR_PRESETS)}.')
        left_idx, right_idx = INTEROCULAR_PRESETS[left_idx]
    num = gt.shape[-2]
    for idx in (left_idx, right_idx):
        flat = [idx] if isinstance(idx, (int, np.integer)) else list(idx)
        if any(not -num <= int(i) < num for i in flat):
            raise ValueError(f'Normalisation index {idx} out of range for '
                             f'{num} GT landmarks.')
    return np.linalg.norm(
        _point(gt, left_idx) - _point(gt, right_idx), axis=-1)


def bbox_size(gt: np.ndarray) -> np.ndarray:
    """``sqrt(w * h)`` of the GT landmark bounding box (LS3D / CatHeads
    normaliser of Mallis et al., ``Evaluators/evalLS3D.py``).

    Args:
        gt (np.ndarray): (G, 2) or (N, G, 2).

    Returns:
        np.ndarray: Sizes, shape () or (N,).
    """
    gt = np.asarray(gt, dtype=np.float64)
    wh = gt.max(axis=-2) - gt.min(axis=-2)
    return np.sqrt(wh[..., 0] * wh[..., 1])


#: A normaliser: the two GT points whose distance normalises (the eyes:
#: inter-ocular distance), or ``'bbox'``: :func:`bbox_size`, Mallis et
#: al.'s LS3D protocol, whose size does not shrink with the yaw as the
#: inter-ocular distance does.
Normaliser = Union[Tuple[int, int], str]


def normaliser(gt: np.ndarray, norm: Normaliser = (0, 1)) -> np.ndarray:
    """Per-image normaliser of the NME and of the part accuracy.

    Args:
        gt (np.ndarray): (N, G, 2) GT points.
        norm (tuple | str): See :data:`Normaliser`.

    Returns:
        np.ndarray: (N,) normalisers.
    """
    if isinstance(norm, str):
        if norm != 'bbox':
            raise ValueError(f"normaliser must be two point indices or "
                             f"'bbox', got {norm!r}")
        return bbox_size(gt)
    return interocular_distance(gt, *norm)


def _check_pair(name: str, a: np.ndarray, n: Optional[int] = None) -> None:
    if a.ndim != 3 or a.shape[-1] != 2:
        raise ValueError(f'{name} must have shape (N, K, 2), got {a.shape}.')
    if n is not None and a.shape[0] != n:
        raise ValueError(f'{name} has {a.shape[0]} images, expected {n}.')


def _valid_mask(pts: np.ndarray, valid: Optional[np.ndarray]) -> np.ndarray:
    mask = np.isfinite(pts).all(-1)
    if valid is not None:
        valid = np.asarray(valid).reshape(pts.shape[:2])
        mask &= valid.astype(bool)
    return mask


def _ridge_fit_predict(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray,
                       alpha_rel: float) -> np.ndarray:
    """Centred ridge with penalty relative to the Gram matrix maximum."""
    from sklearn.linear_model import Ridge
    xc = x_tr - x_tr.mean(0, keepdims=True)
    gram_max = float((xc.T @ xc).max()) + 1e-12
    reg = Ridge(alpha=alpha_rel * gram_max, fit_intercept=True)
    reg.fit(x_tr, y_tr)
    return reg.predict(x_te)


def forward_backward_nme(pred_train: np.ndarray,
                         gt_train: np.ndarray,
                         pred_test: np.ndarray,
                         gt_test: np.ndarray,
                         norm_test: np.ndarray,
                         pred_train_valid: Optional[np.ndarray] = None,
                         pred_test_valid: Optional[np.ndarray] = None,
                         forward_alpha: float = 1e-3,
                         backward_alpha: float = 1e-1,
                         n_repeats: int = 1,
                         n_fit: Optional[int] = None,
                         seed: int = 0) -> dict:
    """Forward and backward NME (Mallis et al. protocol).

    Args:
        pred_train (np.ndarray): Discovered landmarks of the regressor
            training images, (N, K, 2).
        gt_train (np.ndarray): GT landmarks of the training images, (N, G, 2).
        pred_test (np.ndarray): Discovered landmarks of test images (M, K, 2).
        gt_test (np.ndarray): GT landmarks of test images, (M, G, 2).
        norm_test (np.ndarray): Per test image normaliser, (M,) (e.g. the
            inter-ocular distance of ``gt_test``).
        pred_train_valid (np.ndarray, optional): (N, K) validity of the
            discovered training landmarks (0 = no landmark). ``NaN``
            coordinates are invalid too.
        pred_test_valid (np.ndarray, optional): (M, K) same for test.
        forward_alpha (float): Relative ridge penalty, discovered -> GT.
        backward_alpha (float): Relative ridge penalty, GT -> discovered.
        n_repeats (int): Number of random training subsets.
        n_fit (int, optional): Size of each training subset; None = all.
        seed (int): Seed of the subset sampling.

    Returns:
        dict: ``forward``/``backward`` (mean NME in percent),
        ``forward_per_image``/``backward_per_image`` (M,) in percent
        (averaged over repeats; NaN for a test image without any valid
        discovered landmark in backward), ``forward_per_landmark`` (G,),
        ``backward_per_landmark`` (K,) in percent, ``forward_regressed``
        (M, G, 2) of the last repeat, and ``n_fit`` / ``n_repeats``.
    """
    pred_train = np.asarray(pred_train, dtype=np.float64)
    gt_train = np.asarray(gt_train, dtype=np.float64)
    pred_test = np.asarray(pred_test, dtype=np.float64)
    gt_test = np.asarray(gt_test, dtype=np.float64)
    norm_test = np.asarray(norm_test, dtype=np.float64).reshape(-1)
    _check_pair('pred_train', pred_train)
    n_tr = pred_train.shape[0]
    _check_pair('gt_train', gt_train, n_tr)
    _check_pair('pred_test', pred_test)
    m = pred_test.shape[0]
    _check_pair('gt_test', gt_test, m)
    if n_tr < 2:
        raise ValueError(f'Need at least 2 training images, got {n_tr}.')
    if m < 1:
        raise ValueError('Need at least 1 test image.')
    if pred_test.shape[1] != pred_train.shape[1]:
        raise ValueError('pred_train and pred_test have different K: '
                         f'{pred_train.shape[1]} vs {pred_test.shape[1]}.')
    if gt_test.shape[1] != gt_train.shape[1]:
        raise ValueError('gt_train and gt_test have different G.')
    if norm_test.shape[0] != m:
        raise ValueError(f'norm_test must have {m} entries, '
                         f'got {norm_test.shape[0]}.')
    if not np.all(np.isfinite(norm_test)) or np.any(norm_test <= 0):
        raise ValueError('norm_test must be finite and positive.')
    if not (np.isfinite(gt_train).all() and np.isfinite(gt_test).all()):
        raise ValueError('GT landmarks must be finite.')
    if n_repeats < 1:
        raise ValueError(f'n_repeats must be >= 1, got {n_repeats}.')
    if n_fit is not None and not 2 <= n_fit:
        raise ValueError(f'n_fit must be >= 2, got {n_fit}.')

    k, g = pred_train.shape[1], gt_train.shape[1]
    valid_tr = _valid_mask(pred_train, pred_train_valid)
    valid_te = _valid_mask(pred_test, pred_test_valid)
    rng = np.random.default_rng(seed)
    size = n_tr if n_fit is None else min(n_fit, n_tr)

    fwd_img = np.zeros((n_repeats, m))
    fwd_lmk = np.zeros((n_repeats, g))
    bwd_img = np.zeros((n_repeats, m))
    bwd_lmk = np.zeros((n_repeats, k))
    regressed = None
    for r in range(n_repeats):
        idx = (np.arange(n_tr) if size == n_tr else np.sort(
            rng.permutation(n_tr)[:size]))
        x_tr, v_tr, y_tr = pred_train[idx], valid_tr[idx], gt_train[idx]

        # ---- forward: discovered -> GT, invalid filled with train mean.
        col_mean = np.zeros((k, 2))
        for j in range(k):
            col_mean[j] = (x_tr[v_tr[:, j], j].mean(0)
                           if v_tr[:, j].any() else 0.0)
        xf_tr = np.where(v_tr[..., None], x_tr, col_mean[None])
        xf_te = np.where(valid_te[..., None], pred_test, col_mean[None])
        y_hat = _ridge_fit_predict(
            xf_tr.reshape(size, -1), y_tr.reshape(size, -1),
            xf_te.reshape(m, -1), forward_alpha).reshape(m, g, 2)
        regressed = y_hat
        dist = np.linalg.norm(y_hat - gt_test, axis=-1) / norm_test[:, None]
        fwd_img[r] = dist.mean(1)
        fwd_lmk[r] = dist.mean(0)

        # ---- backward: GT -> discovered, one fit per validity pattern.
        bdist = np.full((m, k), np.nan)
        y_tr_flat = y_tr.reshape(size, -1)
        y_te_flat = gt_test.reshape(m, -1)
        if v_tr.all():
            x_hat = _ridge_fit_predict(y_tr_flat, x_tr.reshape(size, -1),
                                       y_te_flat, backward_alpha)
            bdist = np.linalg.norm(
                x_hat.reshape(m, k, 2) - pred_test, axis=-1)
        else:
            for j in range(k):
                sel = v_tr[:, j]
                if sel.sum() < 2:
                    continue
                x_hat = _ridge_fit_predict(y_tr_flat[sel], x_tr[sel, j],
                                           y_te_flat, backward_alpha)
                bdist[:, j] = np.linalg.norm(x_hat - pred_test[:, j], axis=-1)
        bdist = bdist / norm_test[:, None]
        bdist[~valid_te] = np.nan
        with np.errstate(invalid='ignore'), _quiet():
            bwd_img[r] = np.nanmean(bdist, axis=1)
            bwd_lmk[r] = np.nanmean(bdist, axis=0)

    with _quiet():
        fwd_img_m = fwd_img.mean(0)
        bwd_img_m = bwd_img.mean(0)
        bwd_lmk_m = np.nanmean(bwd_lmk, axis=0)
    backward = float(np.nanmean(bwd_lmk_m)) if np.isfinite(
        bwd_lmk_m).any() else float('nan')
    return dict(
        forward=float(fwd_img_m.mean() * 100),
        backward=backward * 100,
        forward_per_image=fwd_img_m * 100,
        backward_per_image=bwd_img_m * 100,
        forward_per_landmark=fwd_lmk.mean(0) * 100,
        backward_per_landmark=bwd_lmk_m * 100,
        forward_regressed=regressed,
        n_fit=int(size),
        n_repeats=int(n_repeats))


class _quiet:
    """Silence 'mean of empty slice' warnings of nanmean."""

    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter('ignore', category=RuntimeWarning)
        return self

    def __exit__(self, *args):
        return self._ctx.__exit__(*args)
