# Copyright (c) mmuld contributors. All rights reserved.
"""Per-landmark accuracy after Hungarian matching (D-ULD++ Fig. 4)."""
from typing import Optional

import numpy as np


def per_landmark_accuracy(pred: np.ndarray,
                          gt: np.ndarray,
                          norm: np.ndarray,
                          thr: float = 0.2,
                          pred_valid: Optional[np.ndarray] = None) -> dict:
    """Accuracy of raw discovered landmarks at GT landmark locations.

    Definition (D-ULD++ Fig. 4, no regression): a discovered landmark ``k``
    *hits* GT landmark ``g`` on an image when both exist and
    ``||p_k - y_g|| <= thr * norm``. ``hit_rate[k, g]`` is the fraction of
    images (where ``k`` is valid; a missing landmark is a miss) with a hit.
    Discovered and GT landmarks are matched one-to-one by the Hungarian
    algorithm (:func:`scipy.optimize.linear_sum_assignment`) maximising the
    total hit rate, ties broken by the smaller mean normalised distance.
    The accuracy of a GT landmark is the hit rate of its matched discovered
    landmark, and 0 when it is unmatched (K < G).

    Args:
        pred (np.ndarray): Discovered landmarks, (N, K, 2).
        gt (np.ndarray): GT landmarks, (N, G, 2).
        norm (np.ndarray): Per-image normaliser (inter-ocular), (N,).
        thr (float): Threshold as a fraction of ``norm``.
        pred_valid (np.ndarray, optional): (N, K) validity of ``pred``.

    Returns:
        dict: ``gt_accuracy`` (G,), ``pred_accuracy`` (K,) (hit rate of the
        matched GT landmark, 0 when unmatched), ``assignment`` (K,) GT index
        per discovered landmark (-1 when unmatched), ``hit_rate`` (K, G) and
        ``mean`` (mean of ``gt_accuracy``).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    norm = np.asarray(norm, dtype=np.float64).reshape(-1)
    if pred.ndim != 3 or gt.ndim != 3 or pred.shape[0] != gt.shape[0]:
        raise ValueError('pred and gt must be (N, K, 2) and (N, G, 2) with '
                         f'the same N, got {pred.shape} and {gt.shape}.')
    if norm.shape[0] != pred.shape[0] or np.any(norm <= 0):
        raise ValueError('norm must be (N,) and positive.')
    from scipy.optimize import linear_sum_assignment
    valid = np.isfinite(pred).all(-1)
    if pred_valid is not None:
        valid &= np.asarray(pred_valid).reshape(valid.shape).astype(bool)
    dist = np.linalg.norm(pred[:, :, None] - gt[:, None], axis=-1)
    dist = dist / norm[:, None, None]  # (N, K, G)
    hits = (dist <= thr) & valid[..., None]
    hit_rate = hits.mean(0)
    with np.errstate(invalid='ignore'):
        dist_f = np.where(valid[..., None], dist, np.nan)
        cnt = valid.sum(0)[:, None]
        mean_dist = np.where(cnt > 0,
                             np.nansum(dist_f, 0) / np.maximum(cnt, 1), 1e6)
    cost = -hit_rate + 1e-6 * np.minimum(mean_dist, 1e3)
    rows, cols = linear_sum_assignment(cost)
    k, g = hit_rate.shape
    assignment = -np.ones(k, dtype=np.int64)
    assignment[rows] = cols
    gt_acc = np.zeros(g)
    gt_acc[cols] = hit_rate[rows, cols]
    pred_acc = np.zeros(k)
    pred_acc[rows] = hit_rate[rows, cols]
    return dict(
        gt_accuracy=gt_acc,
        pred_accuracy=pred_acc,
        assignment=assignment,
        hit_rate=hit_rate,
        mean=float(gt_acc.mean()))
