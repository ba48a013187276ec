# Copyright (c) mmuld contributors. All rights reserved.
"""Batched affine warps of images and points (bootstrapping augmentation).

Matrices are ``(B, 2, 3)`` and map **pixel** coordinates ``(x, y)`` of the
source image to pixel coordinates of the warped image (pixel centres at
integer coordinates, ``align_corners=False`` convention of
:func:`torch.nn.functional.grid_sample`).
"""
from functools import partial
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


class AffinePair(NamedTuple):
    """Result of :func:`random_affine_pair`.

    Attributes:
        images (Tensor): Augmented images ``(B, C, H, W)``.
        matrices (Tensor): ``(B, 2, 3)`` maps pixels of the original images
            to pixels of the augmented images.
        map_points (Callable): ``map_points(points (B, N, 2)) -> (B, N, 2)``
            maps original-image pixel coordinates into the augmented images.
    """
    images: Tensor
    matrices: Tensor
    map_points: Callable[[Tensor], Tensor]


def _to_3x3(matrices: Tensor) -> Tensor:
    if matrices.dim() != 3 or matrices.shape[1:] not in ((2, 3), (3, 3)):
        raise ValueError('affine matrices must have shape (B, 2, 3) or '
                         f'(B, 3, 3), got {tuple(matrices.shape)}')
    if matrices.shape[1] == 3:
        return matrices
    last = matrices.new_tensor([0., 0., 1.]).expand(matrices.shape[0], 1, 3)
    return torch.cat([matrices, last], dim=1)


def invert_affine(matrices: Tensor) -> Tensor:
    """Invert a batch of ``(B, 2, 3)`` affine matrices.

    Args:
        matrices (Tensor): ``(B, 2, 3)`` affine matrices.

    Returns:
        Tensor: ``(B, 2, 3)`` inverse matrices.
    """
    return torch.linalg.inv(_to_3x3(matrices))[:, :2]


def transform_points(points: Tensor, matrices: Tensor) -> Tensor:
    """Apply ``(B, 2, 3)`` affine matrices to ``(B, N, 2)`` points.

    Args:
        points (Tensor): ``(B, N, 2)`` ``(x, y)`` coordinates.
        matrices (Tensor): ``(B, 2, 3)`` affine matrices.

    Returns:
        Tensor: Transformed points ``(B, N, 2)``.
    """
    if points.dim() != 3 or points.shape[-1] != 2:
        raise ValueError(
            f'points must have shape (B, N, 2), got {tuple(points.shape)}')
    matrices = _to_3x3(matrices)[:, :2].to(points.dtype)
    if matrices.shape[0] != points.shape[0]:
        raise ValueError(f'batch size mismatch: {points.shape[0]} point sets '
                         f'vs {matrices.shape[0]} matrices')
    return points @ matrices[:, :, :2].transpose(1, 2) + \
        matrices[:, None, :, 2]


def _pixel_to_normalized(height: int, width: int, ref: Tensor) -> Tensor:
    """3x3 matrix mapping pixel coords to [-1, 1] (align_corners=False)."""
    return ref.new_tensor([[2.0 / width, 0.0, 1.0 / width - 1.0],
                           [0.0, 2.0 / height, 1.0 / height - 1.0],
                           [0.0, 0.0, 1.0]])


def warp_images(images: Tensor,
                matrices: Tensor,
                out_size: Optional[Sequence[int]] = None,
                mode: str = 'bilinear',
                padding_mode: str = 'zeros') -> Tensor:
    """Warp images so that source pixel ``p`` lands at ``matrices @ p``.

    Args:
        images (Tensor): ``(B, C, H, W)`` images (or feature maps).
        matrices (Tensor): ``(B, 2, 3)`` source-pixel -> output-pixel maps.
        out_size (Sequence[int], optional): Output ``(H_out, W_out)``.
            Defaults to the input size.
        mode (str): Interpolation mode of ``grid_sample``.
        padding_mode (str): Padding mode of ``grid_sample``.

    Returns:
        Tensor: Warped images ``(B, C, H_out, W_out)``.
    """
    if images.dim() != 4:
        raise ValueError(
            f'images must have shape (B, C, H, W), got {tuple(images.shape)}')
    B, C, H, W = images.shape
    if out_size is None:
        Ho, Wo = H, W
    else:
        Ho, Wo = int(out_size[0]), int(out_size[1])
    dtype = images.dtype if images.is_floating_point() else torch.float32
    m = _to_3x3(matrices.to(dtype))
    if m.shape[0] != B:
        raise ValueError(f'batch size mismatch: {B} images vs {m.shape[0]} '
                         'matrices')
    n_in = _pixel_to_normalized(H, W, m)
    n_out = _pixel_to_normalized(Ho, Wo, m)
    # theta maps output normalised coords to input normalised coords.
    theta = n_in @ torch.linalg.inv(m) @ torch.linalg.inv(n_out)
    grid = F.affine_grid(theta[:, :2], (B, C, Ho, Wo), align_corners=False)
    return F.grid_sample(
        images.to(dtype),
        grid,
        mode=mode,
        padding_mode=padding_mode,
        align_corners=False)


def affine_matrices(angles: Tensor,
                    flips: Tensor,
                    image_size: Sequence[int],
                    scales: Optional[Tensor] = None) -> Tensor:
    """Flip + rotation (+ scale) matrices about the image centre.

    Each transform first flips horizontally (``x -> W - 1 - x``) where
    ``flips`` is True, then scales and rotates by ``angles`` degrees about
    the pixel centre ``((W - 1) / 2, (H - 1) / 2)``; a positive angle turns
    the x axis towards +y (clockwise on screen, y pointing down).

    Args:
        angles (Tensor): ``(B,)`` rotations in degrees.
        flips (Tensor): ``(B,)`` bool horizontal flips.
        image_size (Sequence[int]): ``(H, W)``.
        scales (Tensor, optional): ``(B,)`` scales; default 1.

    Returns:
        Tensor: ``(B, 2, 3)`` float64 pixel -> pixel matrices.
    """
    H, W = int(image_size[0]), int(image_size[1])
    rad = torch.deg2rad(torch.as_tensor(angles, dtype=torch.float64))
    flips = torch.as_tensor(flips, dtype=torch.bool)
    b = rad.shape[0]
    if scales is None:
        scales = torch.ones(b, dtype=torch.float64)
    cx, cy = (W - 1) / 2.0, (H - 1) / 2.0
    cos, sin = torch.cos(rad) * scales, torch.sin(rad) * scales
    m = torch.zeros(b, 3, 3, dtype=torch.float64)
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[:, 0, 2] = cx - cos * cx + sin * cy
    m[:, 1, 2] = cy - sin * cx - cos * cy
    m[:, 2, 2] = 1.0
    flip = torch.eye(3, dtype=torch.float64).repeat(b, 1, 1)
    flip[flips, 0, 0] = -1.0
    flip[flips, 0, 2] = W - 1.0
    return (m @ flip)[:, :2]


def random_affine_matrices(batch_size: int,
                           image_size: Sequence[int],
                           max_rotation: float = 30.0,
                           flip_prob: float = 0.5,
                           scale_range: Optional[Tuple[float, float]] = None,
                           generator: Optional[torch.Generator] = None,
                           device: Optional[torch.device] = None,
                           dtype: torch.dtype = torch.float32) -> Tensor:
    """Sample random flip + rotation (+ scale) matrices about the centre.

    The transform first flips horizontally (``x -> W - 1 - x``) with
    probability ``flip_prob``, then scales and rotates by an angle uniform in
    ``[-max_rotation, max_rotation]`` degrees about the image centre.

    Args:
        batch_size (int): Number of matrices B.
        image_size (Sequence[int]): ``(H, W)``.
        max_rotation (float): Maximum absolute rotation in degrees.
        flip_prob (float): Horizontal flip probability.
        scale_range (tuple[float, float], optional): Uniform scale range.
            ``None`` disables scaling.
        generator (torch.Generator, optional): RNG for reproducibility.
        device (torch.device, optional): Output device.
        dtype (torch.dtype): Output dtype.

    Returns:
        Tensor: ``(B, 2, 3)`` pixel -> pixel matrices.
    """
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f'flip_prob must be in [0, 1], got {flip_prob}')
    if max_rotation < 0:
        raise ValueError(f'max_rotation must be >= 0, got {max_rotation}')
    H, W = int(image_size[0]), int(image_size[1])

    def rand(n):
        return torch.rand(n, generator=generator, dtype=torch.float64)

    angles = (rand(batch_size) * 2 - 1) * max_rotation  # degrees
    flips = rand(batch_size) < flip_prob
    if scale_range is not None:
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise ValueError(f'invalid scale_range {scale_range}')
        scales = lo + rand(batch_size) * (hi - lo)
    else:
        scales = torch.ones(batch_size, dtype=torch.float64)
    return affine_matrices(
        angles, flips, (H, W), scales=scales).to(device=device, dtype=dtype)


def random_affine_pair(images: Tensor,
                       max_rotation: float = 30.0,
                       flip_prob: float = 0.5,
                       scale_range: Optional[Tuple[float, float]] = None,
                       padding_mode: str = 'zeros',
                       generator: Optional[torch.Generator] = None,
                       max_shift: float = 0.0) -> AffinePair:
    """Create an augmented copy of a batch with known random affine warps.

    Used for the SiLK-style bootstrapping of the detector / descriptor heads
    (paper Sec. 3.2: flips and random rotations).

    Args:
        images (Tensor): ``(B, C, H, W)`` images.
        max_rotation (float): Maximum absolute rotation in degrees.
            Defaults to 30.
        flip_prob (float): Horizontal flip probability. Defaults to 0.5.
        scale_range (tuple[float, float], optional): Optional scale range.
        padding_mode (str): ``grid_sample`` padding mode for the uncovered
            corners. Defaults to ``'zeros'``.
        generator (torch.Generator, optional): CPU RNG for reproducibility.
        max_shift (float): Maximum shift, a fraction of the image side
            (+-, per axis). Defaults to 0.

    Returns:
        AffinePair: ``(images, matrices, map_points)``.
    """
    if images.dim() != 4:
        raise ValueError(
            f'images must have shape (B, C, H, W), got {tuple(images.shape)}')
    B, _, H, W = images.shape
    dtype = images.dtype if images.is_floating_point() else torch.float32
    matrices = random_affine_matrices(
        B, (H, W),
        max_rotation=max_rotation,
        flip_prob=flip_prob,
        scale_range=scale_range,
        generator=generator,
        device=images.device,
        dtype=dtype)
    if max_shift > 0:
        shift = (torch.rand(B, 2, generator=generator, dtype=torch.float64)
                 * 2 - 1) * max_shift * torch.tensor([W, H],
                                                     dtype=torch.float64)
        matrices = matrices.clone()
        matrices[:, :, 2] += shift.to(matrices)
    warped = warp_images(images, matrices, padding_mode=padding_mode)
    return AffinePair(warped, matrices,
                      partial(transform_points, matrices=matrices))
