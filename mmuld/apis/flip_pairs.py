# Copyright (c) mmuld contributors. All rights reserved.
"""Left/right partners of discovered landmarks from horizontal flips."""
from typing import Dict, List, Optional

import numpy as np
from scipy.optimize import linear_sum_assignment


def flip_distance_matrix(keypoints: np.ndarray,
                         visible: np.ndarray,
                         flipped_keypoints: np.ndarray,
                         flipped_visible: np.ndarray,
                         norm: Optional[np.ndarray] = None) -> Dict:
    """Mean distance between landmark i and the flipped landmark j.

    ``flipped_keypoints`` are the predictions on the horizontally flipped
    images, already mapped back into the original images
    (``x -> W - 1 - x``). If landmark j is the mirror partner of landmark
    i, the flipped j lands on i.

    Args:
        keypoints (np.ndarray): (N, K, 2) predictions on the images.
        visible (np.ndarray): (N, K) validity of ``keypoints``.
        flipped_keypoints (np.ndarray): (N, K, 2) predictions on the flipped
            images, mapped back.
        flipped_visible (np.ndarray): (N, K) their validity.
        norm (np.ndarray, optional): (N,) per-image normaliser (e.g. the
            RoI size); distances are divided by it.

    Returns:
        dict: ``distance`` (K, K) mean over images where both are visible
        (NaN where never), ``count`` (K, K) number of such images.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    fk = np.asarray(flipped_keypoints, dtype=np.float64)
    if kp.shape != fk.shape or kp.ndim != 3 or kp.shape[-1] != 2:
        raise ValueError('keypoints and flipped_keypoints must both be '
                         f'(N, K, 2), got {kp.shape} and {fk.shape}')
    v = np.asarray(visible).astype(bool)
    fv = np.asarray(flipped_visible).astype(bool)
    if v.shape != kp.shape[:2] or fv.shape != kp.shape[:2]:
        raise ValueError('visible masks must be (N, K)')
    d = np.linalg.norm(kp[:, :, None] - fk[:, None], axis=-1)  # (N, K, K)
    if norm is not None:
        norm = np.asarray(norm, dtype=np.float64).reshape(-1)
        if norm.shape[0] != kp.shape[0] or np.any(norm <= 0):
            raise ValueError('norm must be (N,) and positive')
        d = d / norm[:, None, None]
    both = v[:, :, None] & fv[:, None, :]
    count = both.sum(0)
    total = np.where(both, d, 0.0).sum(0)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return dict(distance=mean, count=count)


def match_flip_pairs(distance: np.ndarray,
                     max_distance: Optional[float] = None) -> List[int]:
    """Flip partner of every landmark (Hungarian matching).

    The cost is the symmetrised mean distance ``(D + D^T) / 2`` (pairs never
    seen together cost more than any observed pair). ``linear_sum_assignment``
    gives a permutation p; mutual assignments ``p[p[i]] == i`` with
    ``i != j`` become left/right pairs, self-assignments are centre
    landmarks, and landmarks on longer cycles (no consistent partner) are
    treated as centre landmarks too.

    With ``max_distance``, a pair is only formed below that distance: the
    self-cost of every landmark is capped at ``max_distance`` and larger
    off-diagonal costs are forbidden, so an unreliable landmark (no mirrored
    landmark lands near it) stays a centre landmark instead of forcing
    other landmarks into poor pairs.

    Args:
        distance (np.ndarray): (K, K) mean distances (NaN: never observed).
        max_distance (float, optional): Largest distance of a pair.

    Returns:
        list[int]: ``flip_indices``: an involution (``f[f[i]] == i``).
    """
    d = np.asarray(distance, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f'distance must be (K, K), got {d.shape}')
    k = d.shape[0]
    if k == 0:
        return []
    big = (np.nanmax(d) if np.isfinite(d).any() else 1.0) * 10 + 1.0
    d = np.where(np.isfinite(d), d, big)
    cost = 0.5 * (d + d.T)
    if max_distance is not None:
        if max_distance <= 0:
            raise ValueError(f'max_distance must be > 0, got {max_distance}')
        off = ~np.eye(k, dtype=bool)
        cost = np.where(off & (cost > max_distance), big * 10, cost)
        np.fill_diagonal(cost, np.minimum(np.diag(cost), max_distance))
    _, perm = linear_sum_assignment(cost)
    flip = list(range(k))
    for i, j in enumerate(perm):
        if perm[j] == i:
            flip[i] = int(j)
    return flip


def flip_pairs_from_indices(flip_indices: List[int]) -> List[List[int]]:
    """``[[i, j], ...]`` with ``i < j`` from ``flip_indices``."""
    return [[i, j] for i, j in enumerate(flip_indices) if i < j]
