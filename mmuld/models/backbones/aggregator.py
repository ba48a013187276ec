# Copyright (c) mmuld contributors. All rights reserved.
"""Aggregation of SD features over layers and timesteps (paper Eq. 2)."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmuld.registry import MODELS
from .bottleneck import GNBottleneck


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

    Args:
        in_channels (Sequence[int]): Channels of each tapped layer.
        num_timesteps (int): Number of timesteps ``T``.
        out_channels (int): Channels of ``F_ag``. Defaults to 384.
        mid_channels (int, optional): Bottleneck width. Defaults to
            ``out_channels // 4``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_timesteps: int,
                 out_channels: int = 384,
                 mid_channels: Optional[int] = None,
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
        weights = self.normalized_weights()
        dtype = self.mixing_weights.dtype
        out = None
        for l_idx, (f, bottleneck) in enumerate(zip(feats, self.bottlenecks)):
            b, t = f.shape[:2]
            if t != self.num_timesteps:
                raise ValueError(f'Expected {self.num_timesteps} timesteps, '
                                 f'got {t} for layer {l_idx}')
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
