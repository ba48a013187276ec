# Copyright (c) mmuld contributors. All rights reserved.
"""Cumulative error distribution (CED) curves."""
from typing import Tuple

import numpy as np


def ced_curve(errors: np.ndarray,
              max_threshold: float = 10.0,
              n_bins: int = 101) -> Tuple[np.ndarray, np.ndarray]:
    """Classic CED: fraction of images whose error is <= a threshold.

    NaN errors count as failures (never below any threshold).

    Args:
        errors (np.ndarray): Per-image errors (any unit, e.g. NME %), (M,).
        max_threshold (float): Largest threshold (same unit as ``errors``).
        n_bins (int): Number of thresholds in ``[0, max_threshold]``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``thresholds`` (n_bins,) and
        ``fractions`` (n_bins,) in [0, 1], non-decreasing.
    """
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        raise ValueError('ced_curve got an empty error array.')
    if max_threshold <= 0 or n_bins < 2:
        raise ValueError('max_threshold must be > 0 and n_bins >= 2.')
    thresholds = np.linspace(0.0, max_threshold, n_bins)
    finite = np.sort(errors[np.isfinite(errors)])
    counts = np.searchsorted(finite, thresholds, side='right')
    return thresholds, counts / errors.size


def ced_auc(thresholds: np.ndarray, fractions: np.ndarray) -> float:
    """Area under a CED curve normalised to [0, 1] (1 = all errors 0).

    Args:
        thresholds (np.ndarray): Thresholds from :func:`ced_curve`.
        fractions (np.ndarray): Fractions from :func:`ced_curve`.

    Returns:
        float: ``trapz(fractions, thresholds) / thresholds[-1]``.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    if thresholds.shape != fractions.shape or thresholds.size < 2:
        raise ValueError('thresholds and fractions must be equal-length '
                         'arrays with at least 2 entries.')
    span = thresholds[-1] - thresholds[0]
    if span <= 0:
        raise ValueError('thresholds must be increasing.')
    return float(np.trapezoid(fractions, thresholds) / span)


def cumulative_landmark_curve(per_landmark: np.ndarray) -> np.ndarray:
    """Mallis et al. / D-ULD++ Fig. 5 'CED' curve.

    Per-landmark errors are sorted ascending and the running mean is taken:
    entry ``i`` is the mean NME of the ``i + 1`` best landmarks
    (``fwd_perlandmark_cumulative`` in the public evaluator). NaN landmarks
    are dropped.

    Args:
        per_landmark (np.ndarray): Per-landmark errors, (L,).

    Returns:
        np.ndarray: Non-decreasing curve, (L',).
    """
    e = np.asarray(per_landmark, dtype=np.float64).reshape(-1)
    e = np.sort(e[np.isfinite(e)])
    return np.cumsum(e) / np.arange(1, e.size + 1)
