# Copyright (c) mmuld contributors. All rights reserved.
"""ResNet bottleneck with GroupNorm, as used by Diffusion Hyperfeatures."""
from typing import Optional, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn


def gn_groups(channels: int, max_groups: int = 32) -> int:
    """Largest number of GroupNorm groups <= ``max_groups`` dividing
    ``channels``.

    Args:
        channels (int): Number of channels.
        max_groups (int): Upper bound. Defaults to 32.

    Returns:
        int: The number of groups.
    """
    for g in range(min(max_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


class GNBottleneck(BaseModule):
    """ResNet bottleneck ``1x1 -> 3x3 -> 1x1`` with GroupNorm and a projection
    shortcut (the ``B_l`` of Eq. 2, Diffusion Hyperfeatures style).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        mid_channels (int, optional): Bottleneck width. Defaults to
            ``out_channels // 4``.
        init_cfg (dict, optional): mmengine init config. Defaults to Kaiming
            init of the convolutions.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 mid_channels: Optional[int] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d')) -> None:
        super().__init__(init_cfg=init_cfg)
        mid = mid_channels or max(out_channels // 4, 1)

        def norm(c: int) -> dict:
            return dict(type='GN', num_groups=gn_groups(c), requires_grad=True)

        self.conv1 = ConvModule(in_channels, mid, 1, norm_cfg=norm(mid))
        self.conv2 = ConvModule(mid, mid, 3, padding=1, norm_cfg=norm(mid))
        self.conv3 = ConvModule(
            mid, out_channels, 1, norm_cfg=norm(out_channels), act_cfg=None)
        if in_channels != out_channels:
            self.shortcut = ConvModule(
                in_channels,
                out_channels,
                1,
                norm_cfg=norm(out_channels),
                act_cfg=None)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """Forward.

        Args:
            x (Tensor): (N, in_channels, H, W).

        Returns:
            Tensor: (N, out_channels, H, W).
        """
        y = self.conv3(self.conv2(self.conv1(x)))
        return F.relu(y + self.shortcut(x), inplace=True)

    def input_projections(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """The two linear maps that read ``x``: the first 1x1 convolution
        and the shortcut's 1x1 convolution (or ``x`` itself), before their
        normalisation.

        Both are per-pixel linear maps, so they commute with a (convex,
        per-channel) spatial resize: ``forward(resize(x)) ==
        forward_projected(*map(resize, input_projections(x)))``.

        Args:
            x (Tensor): (N, in_channels, h, w).

        Returns:
            tuple[Tensor, Tensor]: (N, mid, h, w) and (N, out_channels, h, w).
        """
        a = self.conv1.conv(x)
        if isinstance(self.shortcut, nn.Identity):
            s = x
        else:
            s = self.shortcut.conv(x)
        return a, s

    def forward_projected(self, a: Tensor, s: Tensor) -> Tensor:
        """The rest of :meth:`forward` after :meth:`input_projections`.

        Args:
            a (Tensor): (N, mid, H, W) first-conv output.
            s (Tensor): (N, out_channels, H, W) shortcut-conv output.

        Returns:
            Tensor: (N, out_channels, H, W).
        """
        a = self.conv1.activate(self.conv1.norm(a))
        y = self.conv3(self.conv2(a))
        if not isinstance(self.shortcut, nn.Identity):
            s = self.shortcut.norm(s)
        return F.relu(y + s, inplace=True)
