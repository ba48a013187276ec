# Copyright (c) mmuld contributors. All rights reserved.
"""Do the discovered landmarks cover the object's parts?

A forward NME can be low while all K landmarks sit in one blob that moves
with the object (a ridge regression from a tight blob still predicts the
parts). Two figures show it: the accuracy of every ground-truth part
(:func:`per_landmark_accuracy`, a part is found in an image when its
matched landmark is within ``thr`` normalisers of it) with the worst part,
and how spread out the landmarks are compared with the ground truth
(:func:`landmark_spread`).
"""
from typing import Dict, Optional, Sequence

import numpy as np

from .landmark_accuracy import per_landmark_accuracy


def _mean_pairwise(pts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean distance between the valid points of each image, (N,) (NaN
    with fewer than two)."""
    d = np.linalg.norm(pts[:, :, None] - pts[:, None], axis=-1)
    pair = mask[:, :, None] & mask[:, None]
    pair &= ~np.eye(pts.shape[1], dtype=bool)[None]
    cnt = pair.sum((1, 2))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(cnt > 0, (d * pair).sum((1, 2)) / cnt, np.nan)


def landmark_spread(pred: np.ndarray, gt: np.ndarray,
                    pred_valid: Optional[np.ndarray] = None) -> float:
    """How spread out the discovered landmarks are, relative to the GT.

    Per image, the mean distance between its valid discovered landmarks
    divided by the mean distance between its ground-truth points; the
    median over images. About 1 (or more) when the landmarks cover the
    object as the ground truth does, much less than 1 when they bunch on
    one part. Per image, so a pose that varies from image to image does
    not blur it.

    Args:
        pred (np.ndarray): (N, K, 2) discovered landmarks.
        gt (np.ndarray): (N, G, 2) ground truth.
        pred_valid (np.ndarray, optional): (N, K) validity of ``pred``.

    Returns:
        float: The median ratio (NaN when no image has two landmarks).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    valid = np.isfinite(pred).all(-1)
    if pred_valid is not None:
        valid &= np.asarray(pred_valid, bool).reshape(valid.shape)
    ratio = _mean_pairwise(np.nan_to_num(pred), valid) / _mean_pairwise(
        gt, np.isfinite(gt).all(-1))
    ratio = ratio[np.isfinite(ratio)]
    return float(np.median(ratio)) if ratio.size else float('nan')


def part_coverage(pred: np.ndarray,
                  gt: np.ndarray,
                  norm: np.ndarray,
                  names: Sequence[str],
                  thr: float = 0.2,
                  pred_valid: Optional[np.ndarray] = None,
                  found_at: float = 0.6) -> Dict[str, object]:
    """Per-part accuracy, the worst part and the spread of the landmarks.

    Args:
        pred (np.ndarray): (N, K, 2) discovered landmarks.
        gt (np.ndarray): (N, G, 2) ground truth.
        norm (np.ndarray): (N,) normaliser (e.g. the inter-ocular distance).
        names (Sequence[str]): The G part names.
        thr (float): A part is hit in an image when its matched landmark is
            within ``thr * norm`` (:func:`per_landmark_accuracy`).
        pred_valid (np.ndarray, optional): (N, K) validity of ``pred``.
        found_at (float): A part is *found* when its accuracy is at least
            this.

    Returns:
        dict: ``part_accuracy`` (name -> fraction), ``worst_part``,
        ``worst_part_accuracy``, ``parts_found`` (count of parts with
        accuracy >= ``found_at``), ``num_parts``, ``all_parts_found``,
        ``spread`` (:func:`landmark_spread`) and ``accuracy_thr``.
    """
    names = list(names)
    if len(names) != np.asarray(gt).shape[1]:
        raise ValueError(f'{len(names)} part names for '
                         f'{np.asarray(gt).shape[1]} ground-truth points')
    acc = per_landmark_accuracy(pred, gt, norm, thr=thr,
                                pred_valid=pred_valid)['gt_accuracy']
    worst = int(np.argmin(acc))
    found = int((acc >= found_at).sum())
    return dict(
        part_accuracy={n: float(a) for n, a in zip(names, acc)},
        worst_part=names[worst],
        worst_part_accuracy=float(acc[worst]),
        parts_found=found,
        num_parts=len(names),
        all_parts_found=found == len(names),
        spread=landmark_spread(pred, gt, pred_valid),
        accuracy_thr=float(thr),
        found_at=float(found_at))
