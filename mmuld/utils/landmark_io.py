# Copyright (c) mmuld contributors. All rights reserved.
"""Input arrays and reported landmarks of the inferencer, the export and
the landmark dump (one convention everywhere)."""
from typing import Tuple

import numpy as np


def to_bgr_uint8(img: np.ndarray, name: str = '<array>') -> np.ndarray:
    """Bring a user's image array to the BGR uint8 layout of the pipeline.

    Accepted: ``(H, W)`` and ``(H, W, 1)`` grey, ``(H, W, 3)`` BGR and
    ``(H, W, 4)`` BGRA (alpha dropped); dtype uint8, or float with values
    in [0, 1] (scaled by 255) or in [0, 255].

    Args:
        img (np.ndarray): The array.
        name (str): Its name in error messages.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8, C-contiguous.

    Raises:
        ValueError: Empty arrays, other shapes or channel counts, NaN or
            values outside those ranges, other dtypes.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f'{name}: expected a numpy array, got '
                        f'{type(img).__name__}')
    if img.size == 0:
        raise ValueError(f'{name}: the image array is empty (shape '
                         f'{img.shape})')
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(
            f'{name}: expected an (H, W), (H, W, 1), (H, W, 3) BGR or '
            f'(H, W, 4) BGRA array, got shape {img.shape}')
    if img.dtype == np.uint8:
        out = img
    elif np.issubdtype(img.dtype, np.floating):
        if not np.isfinite(img).all():
            raise ValueError(f'{name}: the image holds NaN or infinity')
        lo, hi = float(img.min()), float(img.max())
        if lo < 0 or hi > 255:
            raise ValueError(
                f'{name}: float image values must lie in [0, 1] or [0, '
                f'255], got [{lo:.3g}, {hi:.3g}]')
        scale = 255.0 if hi <= 1.0 else 1.0
        out = np.clip(np.rint(img * scale), 0, 255).astype(np.uint8)
    else:
        raise ValueError(
            f'{name}: unsupported dtype {img.dtype}; pass uint8 (0-255) or '
            'float (0-1 or 0-255)')
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] == 4:
        out = out[..., :3]
    return np.ascontiguousarray(out)


def clean_landmarks(keypoints: np.ndarray, scores: np.ndarray,
                    visible: np.ndarray, img_shape: Tuple[int, int]
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one convention for reported landmarks.

    A landmark is visible when the model found an exemplar for it and it
    lies inside the image (pixel centres at integer coordinates, so the
    image spans [-0.5, W - 0.5] x [-0.5, H - 0.5]). A landmark that is not
    visible is reported at (0, 0) with score 0 and visibility 0, as in
    COCO keypoints (``v = 0`` means x = y = 0).

    Args:
        keypoints (np.ndarray): (K, 2) image coordinates.
        scores (np.ndarray): (K, ) scores.
        visible (np.ndarray): (K, ) visibility of the model (> 0: found).
        img_shape (tuple[int, int]): (H, W) of the image.

    Returns:
        tuple: keypoints (K, 2) float64, scores (K, ) float64, visible
        (K, ) int64 in {0, 1}.
    """
    kpts = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    h, w = int(img_shape[0]), int(img_shape[1])
    inside = ((kpts[:, 0] >= -0.5) & (kpts[:, 0] <= w - 0.5)
              & (kpts[:, 1] >= -0.5) & (kpts[:, 1] <= h - 0.5))
    vis = (np.asarray(visible).reshape(-1) > 0) & inside
    vis &= np.isfinite(kpts).all(axis=1)
    kpts = np.where(vis[:, None], kpts, 0.0)
    scores = np.where(vis, scores, 0.0)
    return kpts, scores, vis.astype(np.int64)
