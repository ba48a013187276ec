# Copyright (c) mmuld contributors. All rights reserved.
"""Bilinear resizing as separable matrix products."""
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.precision import autocast_dtype

_CACHE: Dict[tuple, Tensor] = {}


def resize_matrix(in_size: int,
                  out_size: int,
                  antialias: bool = False,
                  device=None,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """The ``(out_size, in_size)`` matrix of 1-D bilinear resizing.

    Bilinear resizing (``align_corners=False``, with or without antialias)
    is separable and linear, so one axis of :func:`F.interpolate` is a
    matrix ``A``; it is read off by resizing an identity (in float64).
    Every row of ``A`` sums to 1, so resizing keeps constants.

    Args:
        in_size (int): Input length.
        out_size (int): Output length.
        antialias (bool): Use the antialiased filter (as ``F.interpolate``
            with ``antialias=True``). Defaults to False.
        device (torch.device, optional): Device of the result.
        dtype (torch.dtype): dtype of the result. Defaults to float32.

    Returns:
        Tensor: ``(out_size, in_size)`` interpolation matrix.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f'resize sizes must be >= 1, got {in_size} -> '
                         f'{out_size}')
    key = (in_size, out_size, bool(antialias), str(device), dtype)
    mat = _CACHE.get(key)
    if mat is None:
        eye = torch.eye(in_size, dtype=torch.float64)
        # channel j holds the unit vector e_j along W: (1, in, 1, in) ->
        # (1, in, 1, out), channel j = A e_j. (Resizing along H with W = 1
        # gives wrong antialiased weights in torch 2.x, so use W.)
        cols = F.interpolate(
            eye.view(1, in_size, 1, in_size),
            size=(1, out_size),
            mode='bilinear',
            align_corners=False,
            antialias=antialias)
        mat = cols.view(in_size, out_size).t().contiguous()
        mat = mat.to(device=device, dtype=dtype)
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = mat
    return mat


def separable_resize(x: Tensor,
                     size: Tuple[int, int],
                     antialias: bool = False) -> Tensor:
    """Bilinear resize of the last two dims as ``A_h @ x @ A_w^T``.

    Equals ``F.interpolate(x, size, mode='bilinear', align_corners=False,
    antialias=antialias)`` up to float rounding; it runs as two small
    matrix products (forward and backward), much faster on GPUs than the
    interpolation kernels for the many-channel maps of the aggregator.

    Args:
        x (Tensor): ``(..., h, w)`` floating tensor.
        size (tuple[int, int]): Output ``(H, W)``.
        antialias (bool): Antialiased filter. Defaults to False.

    Returns:
        Tensor: ``(..., H, W)``.
    """
    h, w = x.shape[-2:]
    out_h, out_w = int(size[0]), int(size[1])
    dtype = autocast_dtype(x.device.type) or x.dtype
    if (out_h, out_w) == (h, w):
        return x
    # each product is one folded GEMM (a 2-D right operand), never a
    # batched product of many tiny matrices; only maps of at most H x w
    # are copied to make operands contiguous
    if out_h != h:
        a_h = resize_matrix(h, out_h, antialias, x.device, dtype)
        x = torch.matmul(x.transpose(-1, -2), a_h.t()).transpose(-1, -2)
    if out_w != w:
        a_w = resize_matrix(w, out_w, antialias, x.device, dtype)
        x = torch.matmul(x, a_w.t())
    return x.contiguous()
