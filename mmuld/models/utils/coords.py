# Copyright (c) mmuld contributors. All rights reserved.
"""Mapping between image pixels and the input crop of top-down pipelines."""
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

ArrayLike = Union[Tensor, np.ndarray, Sequence[float]]


def as_float_tensor(x: ArrayLike, device=None) -> Tensor:
    """Convert a tensor, array or sequence to a float32 tensor.

    Args:
        x (Tensor | ndarray | Sequence[float]): Values.
        device (torch.device, optional): Target device.

    Returns:
        Tensor: float32 tensor on ``device``.
    """
    if isinstance(x, Tensor):
        return x.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)


def image_to_input_coords(points: ArrayLike, center: ArrayLike,
                          scale: ArrayLike, input_size: ArrayLike) -> Tensor:
    """Map image coordinates into the input crop of the top-down pipeline.

    Inverse of mmpose's codec mapping ``x = x_in / input_size * scale +
    center - 0.5 * scale`` (``TopdownPoseEstimator.add_pred_to_datasample``)
    for an unrotated crop.

    Args:
        points (Tensor | ndarray): (..., 2) ``(x, y)`` in image pixels.
        center (Tensor | ndarray): (2,) ``input_center``.
        scale (Tensor | ndarray): (2,) ``input_scale`` (w, h).
        input_size (Tensor | ndarray): (2,) ``input_size`` (w, h).

    Returns:
        Tensor: (..., 2) ``(x, y)`` in input pixels.
    """
    p = as_float_tensor(points)
    c = as_float_tensor(center, p.device).reshape(-1)[:2]
    s = as_float_tensor(scale, p.device).reshape(-1)[:2]
    size = as_float_tensor(input_size, p.device).reshape(-1)[:2]
    if (s <= 0).any():
        raise ValueError(f'input_scale must be positive, got {s.tolist()}')
    return (p - c + 0.5 * s) / s * size


def input_to_image_coords(points: ArrayLike, center: ArrayLike,
                          scale: ArrayLike, input_size: ArrayLike) -> Tensor:
    """Map input-crop pixels back to image coordinates (mmpose's mapping).

    Args:
        points (Tensor | ndarray): (..., 2) ``(x, y)`` in input pixels.
        center (Tensor | ndarray): (2,) ``input_center``.
        scale (Tensor | ndarray): (2,) ``input_scale`` (w, h).
        input_size (Tensor | ndarray): (2,) ``input_size`` (w, h).

    Returns:
        Tensor: (..., 2) ``(x, y)`` in image pixels.
    """
    p = as_float_tensor(points)
    c = as_float_tensor(center, p.device).reshape(-1)[:2]
    s = as_float_tensor(scale, p.device).reshape(-1)[:2]
    size = as_float_tensor(input_size, p.device).reshape(-1)[:2]
    return p / size * s + c - 0.5 * s


def roi_to_input(bbox: ArrayLike, center: ArrayLike, scale: ArrayLike,
                 input_size: ArrayLike) -> Tensor:
    """Map an image-space ``x1, y1, x2, y2`` box into input pixels.

    Args:
        bbox (Tensor | ndarray): (4,) or (1, 4) box in image pixels.
        center, scale, input_size: See :func:`image_to_input_coords`.

    Returns:
        Tensor: (4,) box in input pixels.
    """
    b = as_float_tensor(bbox).reshape(-1)
    if b.numel() != 4:
        raise ValueError(f'a RoI needs 4 values (x1, y1, x2, y2), got '
                         f'{b.numel()}')
    return image_to_input_coords(b.view(2, 2), center, scale,
                                 input_size).reshape(4)
