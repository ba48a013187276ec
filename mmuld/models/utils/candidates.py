# Copyright (c) mmuld contributors. All rights reserved.
"""Landmark candidates: one selection for clustering rounds and inference.

A candidate is a point whose descriptor is clustered (in a round) or
assigned to a centroid (at test time). Three kinds:

* ``'nms'``: the detector's NMS peaks above the score threshold, refined to
  sub-pixel positions (the paper's keypoints);
* ``'dense'``: the detector's highest-scoring map cells, without NMS;
* ``'corners'``: the image's strongest Shi-Tomasi corners inside the part
  of the input that shows the image (:func:`corner_candidates`).

Detector candidates keep at least ``min_keypoints`` per image even below
the threshold, so that a detector still learning a round's targets cannot
starve the next round.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .interest_points import corner_candidates
from .keypoint_ops import heatmap_nms, refine_subpixel

CANDIDATE_KINDS = ('nms', 'dense', 'corners')


def num_dense_candidates(cap: Optional[int], map_hw: Sequence[int]) -> int:
    """Dense (or corner) candidates per image: ``cap``, or by default a
    quarter of the map and at most 256."""
    if cap is not None:
        return int(cap)
    return min(256, int(map_hw[0]) * int(map_hw[1]) // 4)


def keep_at_least(heat: Tensor, kpts: Tensor, scores: Tensor, valid: Tensor,
                  thr: float, n: int,
                  border: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Keypoints (NMS peaks or dense cells, sorted by score) above ``thr``,
    and at least ``n`` per image.

    The highest ones stay even below ``thr``; where a smooth map has fewer
    than ``n`` NMS peaks at all, its highest other cells are added.

    Args:
        heat (Tensor): (B, 1, h, w) detector probabilities.
        kpts (Tensor): (B, N, 2) map cells.
        scores (Tensor): (B, N).
        valid (Tensor): (B, N) bool.
        thr (float): Score threshold.
        n (int): Candidates kept per image at least.
        border (int): Map cells at the edge that hold none.

    Returns:
        tuple: ``keypoints``, ``scores``, ``valid``, zero where invalid.
    """
    rank = torch.arange(valid.shape[1], device=valid.device)
    valid = valid & ((scores > thr) | (rank < n)[None])
    need = (n - valid.sum(1)).clamp(min=0)
    if bool((need > 0).any()):
        ek, es, ev = heatmap_nms(heat, kernel_size=1, score_thr=-1.0,
                                 max_keypoints=2 * n, border=border)
        dup = ((ek[:, :, None] == kpts[:, None]).all(-1)
               & valid[:, None]).any(-1)
        ev = ev & ~dup
        ev = ev & (ev.cumsum(1) <= need[:, None])
        kpts = torch.cat([kpts, ek], 1)
        scores = torch.cat([scores, es], 1)
        valid = torch.cat([valid, ev], 1)
    return kpts * valid[..., None], scores * valid, valid


def select_candidates(kind: str,
                      heat: Tensor,
                      stride: float,
                      *,
                      score_thr: float = 0.15,
                      nms_kernel: int = 5,
                      max_keypoints: int = 50,
                      dense_max_keypoints: Optional[int] = None,
                      border: int = 1,
                      subpixel: bool = True,
                      min_keypoints: int = 0,
                      inputs: Optional[Tensor] = None,
                      boxes: Optional[Sequence[np.ndarray]] = None,
                      corner_window: int = 5,
                      corner_spacing: float = 3.0,
                      corner_subpix: int = 0
                      ) -> Tuple[Tensor, Tensor, Tensor]:
    """Landmark candidates of a batch.

    Args:
        kind (str): ``'nms'``, ``'dense'`` or ``'corners'`` (module
            docstring).
        heat (Tensor): (B, 1, h, w) detector probabilities.
        stride (float): Map stride in input pixels.
        score_thr (float): Detector threshold (exclusive).
        nms_kernel (int): Odd NMS window, map cells (``'nms'``).
        max_keypoints (int): NMS peaks kept per image (``'nms'``).
        dense_max_keypoints (int, optional): Dense cells or corners per
            image (:func:`num_dense_candidates`).
        border (int): Map cells at the edge that hold no detector
            candidate; corners keep one map cell from the shown image's
            edge.
        subpixel (bool): Parabola refinement of NMS peaks.
        min_keypoints (int): Detector candidates kept per image even below
            ``score_thr``; corners: at least this many are asked for.
        inputs (Tensor, optional): (B, C, H, W) network inputs
            (``'corners'``).
        boxes (Sequence[np.ndarray], optional): Per image the part of the
            input that shows the image (``'corners'``; default the whole
            input).
        corner_window (int): Structure-tensor window, input pixels.
        corner_spacing (float): Least distance between corners, pixels.
        corner_subpix (int): Half-window of the corners' sub-pixel
            refinement (:func:`corner_candidates`; 0: none).

    Returns:
        tuple: ``keypoints`` (B, N, 2) in input pixels, ``scores`` (B, N)
        (the detector's; 1 for corners) and ``valid`` (B, N) bool.
    """
    if kind not in CANDIDATE_KINDS:
        raise ValueError(f'candidates must be one of {CANDIDATE_KINDS}, got '
                         f'{kind!r}')
    if kind == 'corners':
        if inputs is None:
            raise ValueError("candidates='corners' needs the inputs")
        num = max(min_keypoints,
                  num_dense_candidates(dense_max_keypoints, heat.shape[-2:]))
        kpts, valid = corner_candidates(
            inputs, num, window=corner_window, spacing=corner_spacing,
            boxes=boxes, margin=stride, subpix=corner_subpix)
        return kpts, valid.to(heat.dtype), valid
    if kind == 'dense':
        cap = num_dense_candidates(dense_max_keypoints, heat.shape[-2:])
        kpts, scores, valid = heatmap_nms(
            heat, kernel_size=1, score_thr=-1.0, border=border,
            max_keypoints=max(min_keypoints, cap))
        # cells above the threshold, and at least the min_keypoints
        # highest of every image
        kpts, scores, valid = keep_at_least(heat, kpts, scores, valid,
                                            score_thr, min_keypoints, border)
    else:
        kpts, scores, valid = heatmap_nms(
            heat,
            kernel_size=nms_kernel,
            score_thr=-1.0 if min_keypoints > 0 else score_thr,
            max_keypoints=max_keypoints,
            border=border)
        if min_keypoints > 0:
            kpts, scores, valid = keep_at_least(
                heat, kpts, scores, valid, score_thr, min_keypoints, border)
        if subpixel:
            kpts = refine_subpixel(heat, kpts, valid)
    return (kpts + 0.5) * stride - 0.5, scores, valid
