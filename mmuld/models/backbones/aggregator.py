# Copyright (c) mmuld contributors. All rights reserved.
"""Aggregation of SD features over layers and timesteps (paper Eq. 2)."""
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmuld.registry import MODELS
from ..utils.precision import autocast_dtype, autocast_off
from .bottleneck import GNBottleneck
from .resize import separable_resize


# the bottleneck's functions through torch.compile (``compile=True``):
# compiled at the first call, once per input shape, not per layer (the
# parameters are inputs of the compiled graph)
_COMPILED: Dict[str, Callable] = {}


def _compiled(name: str) -> Callable:
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(getattr(GNBottleneck, name))
    return _COMPILED[name]


@MODELS.register_module()
class HyperFeatureAggregator(BaseModule):
    """Diffusion-Hyperfeatures aggregator.

    ``F_ag = sum_t sum_l w_{l,t} B_l(resize(r_{l,t}))`` (paper Eq. 2): each
    layer ``l`` owns one bottleneck ``B_l`` shared by all timesteps, every
    (layer, timestep) pair owns one mixing weight. As in Diffusion
    Hyperfeatures, the ``L x T`` raw weights start at 1 and are normalised
    with a softmax over all ``L x T`` entries, so ``F_ag`` is a convex
    combination. Features are resized (bilinear) to the output size *before*
    the bottleneck (the paper upsamples to the image resolution; like
    Hyperfeatures we stop at the output resolution to save compute).

    Two computations of the same function (``fast``):

    * naive (``fast=False``): ``F.interpolate`` of every map to the output
      size, then the bottleneck, exactly as written above;
    * fast (default): where a map is upsampled, the two 1x1 convolutions
      that read the input (``B_l``'s first conv and its projection
      shortcut) run at the map's native size and only their outputs are
      resized. This is exact: a 1x1 convolution is a per-pixel linear map
      and bilinear resizing a per-channel convex combination of pixels, so
      they commute (a bias too, since the weights of every output pixel sum
      to 1). The resize runs as two matrix products
      (:func:`separable_resize`), the frozen features are fed in their own
      dtype (no full-resolution fp32 copy), and the timestep mixing is one
      ``einsum``. Results match the naive path up to float rounding
      (tested).

    ``with_cp=True`` recomputes each layer's bottleneck in the backward
    pass (activation checkpointing): the same numbers, a fraction of the
    activation memory, about one more forward pass of compute.

    ``compile=True`` runs each bottleneck through ``torch.compile``
    (compiled at the first call for each input shape; nothing is stored
    in the module, so state dicts, copies and checkpoints are unchanged).
    The fast path is bound by memory traffic on a GPU (GroupNorm, ReLU,
    additions and casts at the output size); compiling fuses these
    element-wise passes. The same function up to float rounding (tested
    on the CPU, where it is slower). Off by default: not yet measured on
    a GPU.

    Args:
        in_channels (Sequence[int]): Channels of each tapped layer.
        num_timesteps (int): Number of timesteps ``T``.
        out_channels (int): Channels of ``F_ag``. Defaults to 384.
        mid_channels (int, optional): Bottleneck width. Defaults to
            ``out_channels // 4``.
        fast (bool): Use the reordered, matrix-resize computation (see
            above). Defaults to True.
        with_cp (bool): Activation checkpointing per layer while training.
            Defaults to False.
        compile (bool): Run the bottlenecks through ``torch.compile``.
            Defaults to False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_timesteps: int,
                 out_channels: int = 384,
                 mid_channels: Optional[int] = None,
                 fast: bool = True,
                 with_cp: bool = False,
                 compile: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) == 0 or num_timesteps <= 0:
            raise ValueError('HyperFeatureAggregator needs at least one layer '
                             f'and one timestep, got in_channels='
                             f'{list(in_channels)}, num_timesteps='
                             f'{num_timesteps}')
        self.in_channels = list(in_channels)
        self.num_timesteps = int(num_timesteps)
        self.out_channels = int(out_channels)
        self.bottlenecks = nn.ModuleList([
            GNBottleneck(c, out_channels, mid_channels)
            for c in self.in_channels
        ])
        self.mixing_weights = nn.Parameter(
            torch.ones(len(self.in_channels) * self.num_timesteps))
        self.fast = bool(fast)
        self.with_cp = bool(with_cp)
        self.compile = bool(compile)

    def normalized_weights(self) -> Tensor:
        """Softmax-normalised mixing weights, shape (L, T)."""
        return torch.softmax(self.mixing_weights, dim=0).view(
            len(self.in_channels), self.num_timesteps)

    def forward(self, feats: List[Tensor],
                out_size: Tuple[int, int]) -> Tensor:
        """Aggregate features.

        Args:
            feats (list[Tensor]): One tensor per layer, shape
                (B, T, C_l, h_l, w_l), any float dtype.
            out_size (tuple[int, int]): Output (height, width).

        Returns:
            Tensor: F_ag, shape (B, out_channels, *out_size).
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f'Expected {len(self.in_channels)} feature maps, '
                             f'got {len(feats)}')
        for l_idx, f in enumerate(feats):
            if f.dim() != 5 or f.shape[1] != self.num_timesteps:
                raise ValueError(
                    f'Expected {self.num_timesteps} timesteps, i.e. a (B, '
                    f'{self.num_timesteps}, C, h, w) feature map, for layer '
                    f'{l_idx}, got {tuple(f.shape)}')
        if not self.fast:
            return self.forward_naive(feats, out_size)
        weights = self.normalized_weights()
        out_size = (int(out_size[0]), int(out_size[1]))
        out = None
        for l_idx, f in enumerate(feats):
            b, t = f.shape[:2]
            if self.with_cp and self.training and torch.is_grad_enabled():
                y = checkpoint(
                    self._layer_fast,
                    l_idx,
                    f,
                    weights[l_idx],
                    out_size,
                    use_reentrant=False)
            else:
                y = self._layer_fast(l_idx, f, weights[l_idx], out_size)
            out = y if out is None else out + y
        return out

    def _layer_fast(self, l_idx: int, f: Tensor, weights: Tensor,
                    out_size: Tuple[int, int]) -> Tensor:
        """``sum_t w_{l,t} B_l(resize(r_{l,t}))`` of one layer, reordered.

        Args:
            l_idx (int): Layer index.
            f (Tensor): (B, T, C_l, h_l, w_l) features of the layer.
            weights (Tensor): (T, ) normalised mixing weights of the layer.
            out_size (tuple[int, int]): Output (height, width).

        Returns:
            Tensor: (B, out_channels, *out_size).
        """
        bottleneck = self.bottlenecks[l_idx]
        forward, forward_projected = self._bottleneck_fns(bottleneck)
        b, t = f.shape[:2]
        x = f.flatten(0, 1)
        param_dtype = self.mixing_weights.dtype
        if autocast_dtype(x.device.type) is None:
            x = x.to(param_dtype)  # native size: a small copy, if any
        h, w = x.shape[-2:]
        size = tuple(out_size)
        if (h, w) == size:
            y = forward(x)
        else:
            down = h > size[0] or w > size[1]
            if down:
                # downsampling: the 1x1 convs would run on more pixels
                y = forward(separable_resize(x, size, antialias=True))
            else:
                a, s = bottleneck.input_projections(x)
                y = forward_projected(
                    separable_resize(a, size), separable_resize(s, size))
        y = y.view(b, t, *y.shape[1:])
        # outside autocast: the mix reads y itself (kept anyway by the
        # ReLU's backward) instead of saving a low-precision copy of it
        with autocast_off(y.device.type):
            return torch.einsum('btchw,t->bchw', y,
                                weights.to(y.dtype))

    def _bottleneck_fns(self, bottleneck: GNBottleneck
                        ) -> Tuple[Callable, Callable]:
        """``forward`` and ``forward_projected`` of a bottleneck, through
        ``torch.compile`` if ``compile``."""
        if not self.compile:
            return bottleneck.forward, bottleneck.forward_projected
        return (partial(_compiled('forward'), bottleneck),
                partial(_compiled('forward_projected'), bottleneck))

    def forward_naive(self, feats: List[Tensor],
                      out_size: Tuple[int, int]) -> Tensor:
        """The straightforward computation (resize with ``F.interpolate``,
        then the bottleneck); reference of the fast path.

        Args:
            feats (list[Tensor]): As :meth:`forward`.
            out_size (tuple[int, int]): Output (height, width).

        Returns:
            Tensor: F_ag, shape (B, out_channels, *out_size).
        """
        weights = self.normalized_weights()
        dtype = self.mixing_weights.dtype
        out = None
        for l_idx, (f, bottleneck) in enumerate(zip(feats, self.bottlenecks)):
            b, t = f.shape[:2]
            f = f.flatten(0, 1).to(dtype)
            if tuple(f.shape[-2:]) != tuple(out_size):
                down = f.shape[-2] > out_size[0] or f.shape[-1] > out_size[1]
                f = F.interpolate(
                    f,
                    size=tuple(out_size),
                    mode='bilinear',
                    align_corners=False,
                    antialias=down)
            y = bottleneck(f)
            y = y.view(b, t, *y.shape[1:])
            y = (y * weights[l_idx].view(1, t, 1, 1, 1).to(y.dtype)).sum(1)
            out = y if out is None else out + y
        return out
