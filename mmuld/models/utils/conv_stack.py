# Copyright (c) mmuld contributors. All rights reserved.
"""Small helper building ``num_convs`` x (conv3x3 - norm - act) stacks."""
from typing import Optional

from mmcv.cnn import ConvModule
from torch import nn


def build_conv_stack(in_channels: int,
                     feat_channels: int,
                     num_convs: int,
                     kernel_size: int = 3,
                     norm_cfg: Optional[dict] = None,
                     act_cfg: Optional[dict] = None) -> nn.Module:
    """Build a stack of ``num_convs`` ConvModules (same spatial size).

    Args:
        in_channels (int): Input channels.
        feat_channels (int): Channels of every conv.
        num_convs (int): Number of convs (0 gives ``nn.Identity``).
        kernel_size (int): Odd kernel size. Defaults to 3.
        norm_cfg (dict, optional): Norm config, e.g. ``dict(type='BN')``.
        act_cfg (dict, optional): Activation config. Defaults to ReLU.

    Returns:
        nn.Module: The conv stack.
    """
    if num_convs < 0:
        raise ValueError(f'num_convs must be >= 0, got {num_convs}')
    if kernel_size % 2 != 1:
        raise ValueError(f'kernel_size must be odd, got {kernel_size}')
    if num_convs == 0:
        return nn.Identity()
    act_cfg = dict(type='ReLU') if act_cfg is None else act_cfg
    layers = []
    for i in range(num_convs):
        layers.append(
            ConvModule(
                in_channels if i == 0 else feat_channels,
                feat_channels,
                kernel_size,
                padding=kernel_size // 2,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg))
    return nn.Sequential(*layers)
