# Copyright (c) mmuld contributors. All rights reserved.
"""Equivariance error of landmark detections under known transforms."""
from typing import Optional

import numpy as np


def equivariance_error(points: np.ndarray,
                       points_transformed: np.ndarray,
                       matrix: np.ndarray,
                       norm: Optional[np.ndarray] = None,
                       valid: Optional[np.ndarray] = None) -> dict:
    """Error between transformed detections and detections on the
    transformed image: ``||A p + t - p'||``.

    Args:
        points (np.ndarray): Detections on the original images (N, K, 2).
        points_transformed (np.ndarray): Detections of the same landmarks on
            the transformed (e.g. rotated) images, (N, K, 2).
        matrix (np.ndarray): Affine maps original -> transformed image,
            (2, 3) / (3, 3) for all images or (N, 2, 3) / (N, 3, 3), e.g.
            ``cv2.getRotationMatrix2D``.
        norm (np.ndarray, optional): Per-image normaliser (N,); errors are
            in pixels when None, else in percent of ``norm``.
        valid (np.ndarray, optional): (N, K) validity of both detections.

    Returns:
        dict: ``mean`` (float), ``per_image`` (N,), ``per_landmark`` (K,).
    """
    p = np.asarray(points, dtype=np.float64)
    q = np.asarray(points_transformed, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError('points and points_transformed must both be '
                         f'(N, K, 2), got {p.shape} and {q.shape}.')
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim == 2:
        a = np.broadcast_to(a, (p.shape[0], ) + a.shape)
    if a.shape[0] != p.shape[0] or a.shape[-1] != 3 or a.shape[-2] not in (
            2, 3):
        raise ValueError(f'matrix must be (2|3, 3) or (N, 2|3, 3), '
                         f'got {np.shape(matrix)}.')
    mapped = np.einsum('nij,nkj->nki', a[:, :2, :2], p) + a[:, None, :2, 2]
    err = np.linalg.norm(mapped - q, axis=-1)
    if norm is not None:
        norm = np.asarray(norm, dtype=np.float64).reshape(-1, 1)
        err = err / norm * 100
    if valid is not None:
        err = np.where(np.asarray(valid).astype(bool), err, np.nan)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return dict(
            mean=float(np.nanmean(err)),
            per_image=np.nanmean(err, axis=1),
            per_landmark=np.nanmean(err, axis=0))
