# Copyright (c) mmuld contributors. All rights reserved.
"""Use any registered backbone as the feature extractor of the ULD heads."""
from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmuld.registry import MODELS


@MODELS.register_module()
class FeatureMapAdapter(BaseModule):
    """Turn any backbone into one feature map at ``out_stride``.

    The ULD heads read a single map ``F`` of ``out_channels`` channels at
    1/``out_stride`` of the input (what :class:`StableDiffusionBackbone`
    gives). This adapter wraps any backbone of the mmpose / mmengine
    registries (e.g. mmpose's ``ResNet``, ``HRNet``, ``CSPNeXt``) that
    returns a tuple of maps: each selected map gets a 1x1 projection to
    ``out_channels``, is resized (bilinear) to the output resolution and the
    projections are summed, followed by a 3x3 conv, BatchNorm and ReLU. The
    wrapped backbone is trained with the heads unless it is frozen by a
    stage's ``frozen`` list (``'backbone.backbone'``).

    Args:
        backbone (dict): Config of the wrapped backbone.
        in_channels (Sequence[int]): Channels of the maps it returns (in the
            order returned).
        out_channels (int): Channels of the output map.
        out_stride (int): Stride of the output map w.r.t. the input.
        in_indices (Sequence[int], optional): Which of the returned maps to
            use; all when None.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 in_channels: Sequence[int],
                 out_channels: int = 128,
                 out_stride: int = 4,
                 in_indices: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if out_stride < 1:
            raise ValueError(f'out_stride must be >= 1, got {out_stride}')
        if out_channels < 1:
            raise ValueError(f'out_channels must be >= 1, got {out_channels}')
        in_channels = [int(c) for c in in_channels]
        if not in_channels:
            raise ValueError('in_channels must list the channels of the '
                             'wrapped backbone\'s outputs')
        if in_indices is None:
            in_indices = list(range(len(in_channels)))
        bad = [i for i in in_indices if not 0 <= i < len(in_channels)]
        if bad:
            raise ValueError(f'in_indices {list(in_indices)} out of range '
                             f'for {len(in_channels)} in_channels')
        self.backbone = MODELS.build(backbone)
        self.in_channels = in_channels
        self.in_indices = list(in_indices)
        self.out_channels = int(out_channels)
        self.out_stride = int(out_stride)
        self.lateral = nn.ModuleList(
            nn.Conv2d(in_channels[i], out_channels, 1)
            for i in self.in_indices)
        self.fuse = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Extract one map.

        Args:
            x (Tensor): (B, 3, H, W) images.

        Returns:
            tuple[Tensor]: one (B, out_channels, H // out_stride,
            W // out_stride) map.
        """
        feats = self.backbone(x)
        if isinstance(feats, Tensor):
            feats = (feats, )
        if len(feats) != len(self.in_channels):
            raise ValueError(
                f'the wrapped backbone returned {len(feats)} maps but '
                f'in_channels lists {len(self.in_channels)}: set its '
                'out_indices and in_channels to match')
        size = (x.shape[-2] // self.out_stride, x.shape[-1] // self.out_stride)
        out = 0
        for lat, i in zip(self.lateral, self.in_indices):
            f = feats[i]
            if f.shape[1] != self.in_channels[i]:
                raise ValueError(f'map {i} of the wrapped backbone has '
                                 f'{f.shape[1]} channels, in_channels says '
                                 f'{self.in_channels[i]}')
            y = lat(f)
            if y.shape[-2:] != size:
                y = F.interpolate(
                    y, size=size, mode='bilinear', align_corners=False)
            out = out + y
        return (self.fuse(out), )
