# Copyright (c) mmuld contributors. All rights reserved.
"""Shared input handling of the ULD dense heads."""
from typing import Sequence, Tuple, Union

from mmcv.cnn import build_conv_layer
from mmengine.model import BaseModule
from torch import Tensor

from ..utils.conv_stack import build_conv_stack

Features = Union[Tensor, Tuple[Tensor, ...], Sequence[Tensor]]


class BaseULDDenseHead(BaseModule):
    """Base class of the ULD dense heads (detector / descriptor).

    Selects one feature map from the backbone / neck output.

    Args:
        in_channels (int): Channels of the selected feature map.
        input_index (int): Index of the feature map used when the head gets
            a tuple of maps. Defaults to -1.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self, in_channels: int, input_index: int = -1,
                 init_cfg=None):
        super().__init__(init_cfg)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(
                f'in_channels must be a positive int, got {in_channels}')
        self.in_channels = in_channels
        self.input_index = input_index

    def _build_layers(self, feat_channels: int, num_convs: int,
                      out_channels: int, norm_cfg, act_cfg) -> None:
        """``conv_layers`` (``num_convs`` 3x3 conv-norm-act blocks of
        ``feat_channels``) and a 1x1 ``final_layer`` to ``out_channels``.
        """
        self.feat_channels = feat_channels
        self.num_convs = num_convs
        self.conv_layers = build_conv_stack(
            self.in_channels, feat_channels, num_convs, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        last = feat_channels if num_convs > 0 else self.in_channels
        self.final_layer = build_conv_layer(
            dict(type='Conv2d'), last, out_channels, kernel_size=1)

    def _transform_inputs(self, feats: Features) -> Tensor:
        """Select the input feature map and check its shape."""
        if isinstance(feats, Tensor):
            x = feats
        elif isinstance(feats, (tuple, list)) and len(feats) > 0:
            x = feats[self.input_index]
        else:
            raise ValueError(
                f'{self.__class__.__name__} expects a Tensor or a non-empty '
                f'tuple of Tensors, got {type(feats)}')
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{self.__class__.__name__} expects features of shape '
                f'(B, {self.in_channels}, h, w), got {tuple(x.shape)}')
        return x
