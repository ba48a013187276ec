# Copyright (c) mmuld contributors. All rights reserved.
"""Keypoint operations on dense maps: NMS, descriptor sampling, rendering.

Coordinate conventions (see ``docs/design.md``):

* Keypoints inside the model are ``(x, y)`` in **input pixels** of the
  ``(B, 3, S, S)`` network input, pixel centres at integer coordinates.
* A map at stride ``s`` is sampled at ``m = (x + 0.5) / s - 0.5``
  (``align_corners=False`` convention), i.e. map cell ``u`` covers input
  pixels ``[u * s, (u + 1) * s)`` and its centre is at
  ``x = (u + 0.5) * s - 0.5``.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor


def input_to_map_coords(points: Tensor, stride: float) -> Tensor:
    """Convert input-pixel coordinates to map coordinates at ``stride``.

    Args:
        points (Tensor): Coordinates ``(..., 2)`` in input pixels.
        stride (float): Stride of the map w.r.t. the input.

    Returns:
        Tensor: Coordinates ``(..., 2)`` in map pixels.
    """
    return (points + 0.5) / stride - 0.5


def map_to_input_coords(points: Tensor, stride: float) -> Tensor:
    """Convert map coordinates at ``stride`` to input-pixel coordinates.

    Args:
        points (Tensor): Coordinates ``(..., 2)`` in map pixels.
        stride (float): Stride of the map w.r.t. the input.

    Returns:
        Tensor: Coordinates ``(..., 2)`` in input pixels.
    """
    return (points + 0.5) * stride - 0.5


def _check_map(x: Tensor, name: str, channels: Optional[int] = None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f'{name} must be a 4-D tensor (B, C, h, w), got '
                         f'{getattr(x, "shape", type(x))}')
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f'{name} must have {channels} channel(s), got '
                         f'shape {tuple(x.shape)}')


def _check_points(points: Tensor, batch: int, name: str = 'keypoints'):
    if (not isinstance(points, Tensor) or points.dim() != 3
            or points.shape[-1] != 2 or points.shape[0] != batch):
        raise ValueError(f'{name} must be a tensor (B={batch}, N, 2), got '
                         f'{getattr(points, "shape", type(points))}')


def heatmap_nms(heatmap: Tensor,
                kernel_size: Optional[int] = 3,
                score_thr: float = 0.0,
                max_keypoints: int = 100,
                border: int = 0,
                radius: Optional[int] = None
                ) -> Tuple[Tensor, Tensor, Tensor]:
    """Extract keypoints from a single-channel score map by max-pool NMS.

    A location is kept when it equals the maximum of its
    ``kernel_size x kernel_size`` neighbourhood, its score is strictly above
    ``score_thr`` and it lies at least ``border`` cells from the map edge.
    The ``max_keypoints`` highest kept locations are returned per image,
    sorted by decreasing score and padded with zeros (``valid=False``).

    Note:
        On exact plateaus all tied cells survive (as in SuperPoint / SiLK
        max-pool NMS).

    Args:
        heatmap (Tensor): Score map ``(B, 1, h, w)`` (e.g. the sigmoid of the
            detector logits).
        kernel_size (int, optional): Odd NMS window size. Defaults to 3.
        score_thr (float): Minimum score (exclusive). Defaults to 0.
        max_keypoints (int): Maximum number of keypoints N per image.
            Defaults to 100.
        border (int): Suppress detections closer than ``border`` cells to
            the map edge. Defaults to 0.
        radius (int, optional): If given, overrides ``kernel_size`` with
            ``2 * radius + 1``.

    Returns:
        tuple:
        - keypoints (Tensor): ``(B, N, 2)`` float ``(x, y)`` in map pixels.
        - scores (Tensor): ``(B, N)`` scores (0 for padding).
        - valid (Tensor): ``(B, N)`` bool mask of real detections.
    """
    _check_map(heatmap, 'heatmap', channels=1)
    if radius is not None:
        if radius < 0:
            raise ValueError(f'radius must be >= 0, got {radius}')
        kernel_size = 2 * int(radius) + 1
    if kernel_size is None or kernel_size < 1 or kernel_size % 2 != 1:
        raise ValueError(
            f'kernel_size must be a positive odd integer, got {kernel_size}')
    if max_keypoints < 1:
        raise ValueError(f'max_keypoints must be >= 1, got {max_keypoints}')
    if border < 0:
        raise ValueError(f'border must be >= 0, got {border}')

    B, _, h, w = heatmap.shape
    scores = heatmap.detach()
    pooled = F.max_pool2d(
        scores, kernel_size, stride=1, padding=kernel_size // 2)
    keep = (scores == pooled) & (scores > score_thr)
    if border > 0:
        edge = torch.zeros_like(keep)
        edge[..., border:h - border, border:w - border] = True
        keep &= edge
    flat = heatmap.flatten(1)  # keep grad path for scores if any
    keep = keep.flatten(1)
    n = min(max_keypoints, h * w)
    masked = torch.where(keep, scores.flatten(1),
                         torch.full_like(flat, float('-inf')))
    _, idx = masked.topk(n, dim=1)
    valid = keep.gather(1, idx)
    top_scores = flat.gather(1, idx) * valid
    xs = (idx % w).to(heatmap.dtype)
    ys = torch.div(idx, w, rounding_mode='floor').to(heatmap.dtype)
    keypoints = torch.stack([xs, ys], dim=-1) * valid[..., None]
    if n < max_keypoints:
        pad = max_keypoints - n
        keypoints = F.pad(keypoints, (0, 0, 0, pad))
        top_scores = F.pad(top_scores, (0, pad))
        valid = F.pad(valid, (0, pad), value=False)
    return keypoints, top_scores, valid


def sample_descriptors(desc_map: Tensor,
                       keypoints: Tensor,
                       stride: float,
                       normalize: bool = True) -> Tensor:
    """Bilinearly sample descriptors at keypoints given in input pixels.

    Args:
        desc_map (Tensor): Descriptor map ``(B, D, h, w)`` at ``stride``.
        keypoints (Tensor): ``(B, N, 2)`` ``(x, y)`` in input pixels.
        stride (float): Stride of ``desc_map`` w.r.t. the input.
        normalize (bool): Re-normalise the sampled descriptors to unit L2
            length. Defaults to True.

    Returns:
        Tensor: Descriptors ``(B, N, D)``.
    """
    _check_map(desc_map, 'desc_map')
    B, D, h, w = desc_map.shape
    _check_points(keypoints, B)
    if stride <= 0:
        raise ValueError(f'stride must be positive, got {stride}')
    kpts = keypoints.to(desc_map.dtype)
    # normalised grid coordinate for align_corners=False:
    # g = (2 * m + 1) / w - 1 with m = (x + 0.5) / stride - 0.5
    size = kpts.new_tensor([w, h])
    grid = 2.0 * (kpts + 0.5) / (stride * size) - 1.0
    out = F.grid_sample(
        desc_map,
        grid[:, :, None, :],
        mode='bilinear',
        padding_mode='border',
        align_corners=False)  # (B, D, N, 1)
    out = out[..., 0].transpose(1, 2)
    if normalize:
        out = F.normalize(out, p=2, dim=-1)
    return out


def render_gaussian_heatmaps(keypoints: Tensor,
                             valid: Optional[Tensor],
                             heatmap_size: Union[int, Sequence[int]],
                             stride: float,
                             sigma: float = 1.0) -> Tensor:
    """Render one unnormalised 2D Gaussian (peak 1) per keypoint.

    Args:
        keypoints (Tensor): ``(B, N, 2)`` ``(x, y)`` in input pixels.
        valid (Tensor, optional): ``(B, N)`` mask; invalid keypoints give an
            all-zero channel. ``None`` means all valid.
        heatmap_size (int | Sequence[int]): Map size ``(h, w)``.
        stride (float): Stride of the map w.r.t. the input.
        sigma (float): Gaussian standard deviation in **map** pixels.

    Returns:
        Tensor: Heatmaps ``(B, N, h, w)`` with values in ``[0, 1]``.
    """
    if keypoints.dim() != 3 or keypoints.shape[-1] != 2:
        raise ValueError('keypoints must be a tensor (B, N, 2), got '
                         f'{tuple(keypoints.shape)}')
    if sigma <= 0:
        raise ValueError(f'sigma must be positive, got {sigma}')
    if isinstance(heatmap_size, int):
        heatmap_size = (heatmap_size, heatmap_size)
    h, w = int(heatmap_size[0]), int(heatmap_size[1])
    B, N, _ = keypoints.shape
    dtype = keypoints.dtype if keypoints.is_floating_point() else \
        torch.float32
    centers = input_to_map_coords(keypoints.to(dtype), stride)
    xs = torch.arange(w, device=keypoints.device, dtype=dtype)
    ys = torch.arange(h, device=keypoints.device, dtype=dtype)
    dx2 = (xs.view(1, 1, 1, w) - centers[..., 0, None, None])**2
    dy2 = (ys.view(1, 1, h, 1) - centers[..., 1, None, None])**2
    heatmaps = torch.exp(-(dx2 + dy2) / (2.0 * sigma**2))
    if valid is not None:
        if valid.shape != (B, N):
            raise ValueError(f'valid must have shape {(B, N)}, got '
                             f'{tuple(valid.shape)}')
        heatmaps = heatmaps * valid.to(dtype)[..., None, None]
    return heatmaps


def render_gaussian_heatmap(keypoints: Tensor,
                            valid: Optional[Tensor],
                            heatmap_size: Union[int, Sequence[int]],
                            stride: float,
                            sigma: float = 1.0) -> Tensor:
    """Render all keypoints on a single channel (max over keypoints).

    This is the pseudo ground truth ``G`` of the pose-guided proxy task
    (paper Sec. 3.3.1) and the single-channel pseudo-label heatmap of the
    detector head.

    Args:
        keypoints (Tensor): ``(B, N, 2)`` ``(x, y)`` in input pixels.
        valid (Tensor, optional): ``(B, N)`` mask of keypoints to draw.
        heatmap_size (int | Sequence[int]): Map size ``(h, w)``.
        stride (float): Stride of the map w.r.t. the input.
        sigma (float): Gaussian standard deviation in map pixels.

    Returns:
        Tensor: Heatmap ``(B, 1, h, w)`` in ``[0, 1]`` (zeros when N == 0).
    """
    maps = render_gaussian_heatmaps(keypoints, valid, heatmap_size, stride,
                                    sigma)
    if maps.shape[1] == 0:
        return maps.new_zeros(maps.shape[0], 1, *maps.shape[2:])
    return maps.amax(dim=1, keepdim=True)


def refine_subpixel(heatmap: Tensor, keypoints: Tensor,
                    valid: Optional[Tensor] = None) -> Tensor:
    """Move integer peak locations to the vertex of a parabola fit.

    Along each axis the scores at the peak and its two neighbours define a
    parabola; its vertex (clipped to +-0.5 cell) is the refined position.
    This is the usual quadratic peak interpolation of heatmap decoders; it
    removes most of the quantisation error of a map at stride s (about
    ``s / sqrt(12)`` pixels per axis).

    Args:
        heatmap (Tensor): ``(B, 1, h, w)`` scores.
        keypoints (Tensor): ``(B, N, 2)`` integer ``(x, y)`` map cells (as
            returned by :func:`heatmap_nms`).
        valid (Tensor, optional): ``(B, N)`` mask; invalid points are
            returned unchanged.

    Returns:
        Tensor: ``(B, N, 2)`` refined map coordinates.
    """
    _check_map(heatmap, 'heatmap', channels=1)
    B, _, h, w = heatmap.shape
    _check_points(keypoints, B)
    hm = heatmap.detach()[:, 0].flatten(1)
    x = keypoints[..., 0].round().long().clamp(0, w - 1)
    y = keypoints[..., 1].round().long().clamp(0, h - 1)

    def at(xx, yy):
        return hm.gather(1, (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)))

    c = at(x, y)
    offsets = []
    for lo, hi, inside in ((at(x - 1, y), at(x + 1, y), (x > 0) & (x < w - 1)),
                           (at(x, y - 1), at(x, y + 1), (y > 0) &
                            (y < h - 1))):
        den = lo + hi - 2 * c
        d = torch.where(den < 0, 0.5 * (lo - hi) / den.clamp(max=-1e-12),
                        torch.zeros_like(c))
        offsets.append(torch.where(inside, d.clamp(-0.5, 0.5),
                                   torch.zeros_like(d)))
    out = keypoints.clone().to(heatmap.dtype)
    out[..., 0] = x.to(out.dtype) + offsets[0]
    out[..., 1] = y.to(out.dtype) + offsets[1]
    if valid is not None:
        out = torch.where(valid[..., None], out, keypoints.to(out.dtype))
    return out
