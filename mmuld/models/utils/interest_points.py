# Copyright (c) mmuld contributors. All rights reserved.
"""Image interest points as keypoint candidates of a clustering round.

The parts people annotate (eye centres, a nose tip, mouth corners, ear
tips) are places where the image changes in every direction: corners and
small blobs. A descriptor map learnt by matching images to each other tells
every location of the object apart, so its strongest detector cells, or a
K-means of all its cells, cut the object into regions whose centroids lie
between the parts. Shi-Tomasi corners (OpenCV's ``goodFeaturesToTrack``,
the smaller eigenvalue of the local structure tensor) are such places in
any image; the clustering then keeps the ones that recur across instances
(docs/methods.md, "Candidates at image corners").
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import Tensor

from .keypoint_ops import sample_descriptors


def window_pixels(fraction: float, side: float) -> int:
    """A structure-tensor window given as a fraction of the input side,
    in pixels: the nearest odd integer, at least 3.

    Args:
        fraction (float): Window side relative to the input side.
        side (float): Input side, pixels.

    Returns:
        int: Odd window side, pixels.
    """
    return max(3, int(round(fraction * side)) // 2 * 2 + 1)


def _check_window(fn: str, window: int) -> None:
    if window < 3 or window % 2 == 0:
        raise ValueError(f'{fn}: window={window!r} must be an odd integer '
                         '>= 3')


def corner_response(inputs: Tensor, window: int = 5) -> Tensor:
    """Shi-Tomasi corner response of each image (OpenCV's
    ``cornerMinEigenVal``: the smaller eigenvalue of the structure tensor
    over a ``window`` x ``window`` window), for the channel mean.

    Args:
        inputs (Tensor): ``(B, C, H, W)`` network inputs.
        window (int): Window side, input pixels (odd, >= 3).

    Returns:
        Tensor: ``(B, 1, H, W)`` on the inputs' device.
    """
    _check_window('corner_response', window)
    gray = inputs.detach().float().mean(1).cpu().numpy()
    resp = np.stack([
        cv2.cornerMinEigenVal(np.ascontiguousarray(g), int(window), 3)
        for g in gray
    ])
    return torch.from_numpy(resp)[:, None].to(inputs.device)


def corner_candidates(inputs: Tensor,
                      num: int,
                      window: int = 5,
                      spacing: float = 3.0,
                      boxes: Optional[Sequence[np.ndarray]] = None,
                      margin: float = 0.0,
                      subpix: int = 0) -> Tuple[Tensor, Tensor]:
    """The ``num`` strongest Shi-Tomasi corners of each image.

    Args:
        inputs (Tensor): ``(B, C, H, W)`` network inputs; the corners are
            found on their channel mean.
        num (int): Corners per image (fewer where an image has fewer).
        window (int): Side of the structure tensor's window, input pixels
            (OpenCV's ``blockSize``).
        spacing (float): Two corners are at least this far apart, input
            pixels (OpenCV's ``minDistance``).
        boxes (Sequence[np.ndarray], optional): Per image the
            ``(x0, y0, x1, y1)`` pixel-edge box of the input that shows the
            image (:func:`valid_input_box`); corners lie inside it, so the
            edge of the padding is never one. Default: the whole input.
        margin (float): Corners keep this far (input pixels) from the box
            edge.
        subpix (int): With ``subpix`` = r > 0 each corner is moved by
            OpenCV's ``cornerSubPix`` (search window ``2 r + 1`` pixels),
            which puts it where the edges around it meet: the structure
            tensor peaks inside a pointed tip, not at it. Refined corners
            stay inside the box. 0: the pixel of the strongest response.

    Returns:
        tuple: ``keypoints`` ``(B, num, 2)`` (x, y) input pixels (pixel
        centres at integers) on the inputs' device, strongest first, and
        ``valid`` ``(B, num)`` bool (False for the padding rows of an
        image with fewer corners).
    """
    if num < 1:
        raise ValueError(f'corner_candidates: num={num!r} must be >= 1')
    _check_window('corner_candidates', window)
    b, _, h, w = inputs.shape
    gray = inputs.detach().float().mean(1).cpu().numpy()
    kpts = np.zeros((b, num, 2), np.float32)
    valid = np.zeros((b, num), bool)
    for i in range(b):
        x0, y0, x1, y1 = (boxes[i] if boxes is not None else
                          (-0.5, -0.5, w - 0.5, h - 0.5))
        mask = np.zeros((h, w), np.uint8)
        c0 = max(0, int(np.ceil(x0 + 0.5 + margin)))
        r0 = max(0, int(np.ceil(y0 + 0.5 + margin)))
        c1 = min(w, int(np.floor(x1 + 0.5 - margin)))
        r1 = min(h, int(np.floor(y1 + 0.5 - margin)))
        if c1 <= c0 or r1 <= r0:
            continue
        mask[r0:r1, c0:c1] = 1
        pts = cv2.goodFeaturesToTrack(
            np.ascontiguousarray(gray[i]), maxCorners=num, qualityLevel=1e-4,
            minDistance=float(spacing), mask=mask, blockSize=int(window))
        if pts is None:
            continue
        pts = pts.reshape(-1, 2)[:num]
        if subpix > 0:
            pts = np.ascontiguousarray(pts.reshape(-1, 1, 2), np.float32)
            cv2.cornerSubPix(
                np.ascontiguousarray(gray[i]), pts, (subpix, subpix),
                (-1, -1),
                (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30,
                 0.01))
            pts = pts.reshape(-1, 2)
            pts[:, 0] = pts[:, 0].clip(c0, c1 - 1)
            pts[:, 1] = pts[:, 1].clip(r0, r1 - 1)
        kpts[i, :len(pts)] = pts
        valid[i, :len(pts)] = True
    return (torch.from_numpy(kpts).to(inputs.device),
            torch.from_numpy(valid).to(inputs.device))


def corner_strength(inputs: Tensor, points: Tensor, window: int = 5) -> Tensor:
    """The corner response (:func:`corner_response`) at points, bilinear.

    Args:
        inputs (Tensor): ``(B, C, H, W)`` network inputs.
        points (Tensor): ``(B, P, 2)`` (x, y) input pixels.
        window (int): Window side, input pixels.

    Returns:
        Tensor: ``(B, P)``.
    """
    resp = corner_response(inputs, window)
    return sample_descriptors(resp, points.to(resp.dtype), 1.0,
                              normalize=False)[..., 0]
