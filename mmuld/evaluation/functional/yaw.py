# Copyright (c) mmuld contributors. All rights reserved.
"""Error breakdown by head yaw (D-ULD++ Fig. 3b)."""
from typing import Sequence

import numpy as np

#: Yaw ranges (degrees) of D-ULD++ Fig. 3b / Fig. 7.
DEFAULT_YAW_BINS = (-90.0, -60.0, -30.0, 30.0, 60.0, 90.0)


def yaw_breakdown(errors: np.ndarray,
                  yaws: np.ndarray,
                  bins: Sequence[float] = DEFAULT_YAW_BINS) -> list:
    """Mean error per yaw range.

    Args:
        errors (np.ndarray): Per-image errors (M,).
        yaws (np.ndarray): Per-image yaw in degrees (M,); NaN = unknown.
        bins (Sequence[float]): Increasing bin edges; a yaw falls in
            ``[lo, hi)`` (the last bin is closed).

    Returns:
        list[dict]: One dict per bin with ``range`` (lo, hi), ``count`` and
        ``mean`` (NaN when empty).
    """
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    y = np.asarray(yaws, dtype=np.float64).reshape(-1)
    edges = np.asarray(bins, dtype=np.float64)
    if e.shape != y.shape:
        raise ValueError(f'errors {e.shape} and yaws {y.shape} differ.')
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError('bins must be at least 2 increasing edges.')
    out = []
    for i in range(edges.size - 1):
        lo, hi = edges[i], edges[i + 1]
        last = i == edges.size - 2
        sel = (y >= lo) & ((y <= hi) if last else (y < hi)) & np.isfinite(e)
        out.append(
            dict(
                range=(float(lo), float(hi)),
                count=int(sel.sum()),
                mean=float(e[sel].mean()) if sel.any() else float('nan')))
    return out
