# Copyright (c) mmuld contributors. All rights reserved.
"""Where the crop border and the padding are, for diagnostics."""
from typing import Mapping, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .coords import image_to_input_coords

#: Width of the border band in map cells: points this close to an edge
#: count as near the border (the edge of the part of the input that shows
#: the image in the clustering-round diagnostics, :func:`near_border`; the
#: crop edge in the learnability benchmark's border share).
BORDER_CELLS = 2.0


def in_frame(points: Union[np.ndarray, Tensor],
             size: Sequence[int]) -> Union[np.ndarray, Tensor]:
    """Which points lie inside an input of ``size`` ``(H, W)`` (pixel
    centres at integers, from 0 to ``W - 1`` and ``H - 1``).

    Args:
        points (np.ndarray | Tensor): (..., 2) pixel coordinates ``(x, y)``.
        size (Sequence[int]): ``(H, W)``.

    Returns:
        np.ndarray | Tensor: (...) bool, of the type of ``points``.
    """
    h, w = size
    return ((points[..., 0] >= 0) & (points[..., 0] <= w - 1)
            & (points[..., 1] >= 0) & (points[..., 1] <= h - 1))


def valid_input_box(metainfo: Mapping) -> np.ndarray:
    """The part of the network input that shows image pixels.

    ``TopdownAffine`` maps the crop box (``input_center``,
    ``input_scale``) onto the ``input_size`` input; where the box leaves
    the image the input is padding. Without rotation the image rectangle
    ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` lands on an axis-aligned box of
    the input, intersected here with the input itself.

    Args:
        metainfo (Mapping): Sample metainfo with ``input_center``,
            ``input_scale``, ``input_size`` and ``ori_shape`` (image
            ``(h, w)``). Without them the whole input is returned.

    Returns:
        np.ndarray: ``(x0, y0, x1, y1)`` in input pixels (pixel-edge
        coordinates, the whole input being ``(-0.5, -0.5, S - 0.5, S -
        0.5)``).
    """
    size = metainfo.get('input_size')
    if size is None:
        raise KeyError('metainfo has no input_size')
    sw, sh = float(size[0]), float(size[1])
    full = np.array([-0.5, -0.5, sw - 0.5, sh - 0.5])
    center = metainfo.get('input_center')
    scale = metainfo.get('input_scale')
    shape = metainfo.get('ori_shape')
    if center is None or scale is None or shape is None:
        return full
    h_img, w_img = float(shape[0]), float(shape[1])
    corners = np.array([[-0.5, -0.5], [w_img - 0.5, h_img - 0.5]])
    (x0, y0), (x1, y1) = image_to_input_coords(
        corners, np.asarray(center, dtype=np.float64),
        np.asarray(scale, dtype=np.float64),
        np.array([sw, sh])).double().tolist()
    return np.array([max(x0, full[0]), max(y0, full[1]),
                     min(x1, full[2]), min(y1, full[3])])


def near_border(points: Tensor, box, stride: float,
                cells: float = BORDER_CELLS) -> Tensor:
    """Whether points lie within ``cells`` map cells of a box's edge.

    Map cell ``u`` covers input pixels ``[u s - 0.5, (u + 1) s - 0.5)``;
    a point is "near" when the cell it falls in is one of the ``cells``
    outermost cells inside the box (or outside the box).

    Args:
        points (Tensor): ``(N, 2)`` input pixels.
        box: ``(x0, y0, x1, y1)`` pixel-edge box (see
            :func:`valid_input_box`).
        stride (float): Map stride.
        cells (float): Width of the border band in map cells.

    Returns:
        Tensor: ``(N,)`` bool.
    """
    box = torch.as_tensor(np.asarray(box, dtype=np.float64),
                          dtype=points.dtype, device=points.device)
    margin = cells * stride
    x, y = points[:, 0], points[:, 1]
    return (x < box[0] + margin) | (x > box[2] - margin) | \
        (y < box[1] + margin) | (y > box[3] - margin)
