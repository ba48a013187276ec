# Copyright (c) mmuld contributors. All rights reserved.
from typing import Dict, Optional

import torch.nn.functional as F
from torch import Tensor

from mmuld.registry import MODELS
from ..utils.keypoint_ops import sample_descriptors
from .base_uld_head import BaseULDDenseHead, Features


@MODELS.register_module()
class ULDDescriptorHead(BaseULDDenseHead):
    """Landmark descriptor head Psi_f of D-ULD / D-ULD++ (paper Sec. 3.2).

    A few ``conv3x3-norm-act`` layers followed by a 1x1 projection to
    ``desc_dim`` channels; the output descriptor volume ``F`` is
    L2-normalised along the channel dimension. Descriptors at (sub-pixel)
    keypoints are read with :func:`mmuld.models.utils.sample_descriptors`.
    In D-ULD self-training the head computes its own loss on the
    descriptors at the pseudo-labels (:meth:`loss`,
    :class:`DescriptorContrastiveLoss` by default).

    Args:
        in_channels (int): Channels of the input feature map.
        desc_dim (int): Descriptor dimension D. Defaults to 128.
        feat_channels (int): Channels of the intermediate convs.
            Defaults to 128.
        num_convs (int): Number of intermediate convs. Defaults to 2.
        norm_cfg (dict, optional): Norm layer config. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict, optional): Activation config. Defaults to ReLU.
        input_index (int): Feature map index when given a tuple.
            Defaults to -1.
        loss (dict): Self-training loss config. Defaults to
            ``dict(type='DescriptorContrastiveLoss', margin=0.8)``.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to :attr:`default_init_cfg`.
    """

    def __init__(self,
                 in_channels: int,
                 desc_dim: int = 128,
                 feat_channels: int = 128,
                 num_convs: int = 2,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 input_index: int = -1,
                 loss: dict = dict(
                     type='DescriptorContrastiveLoss', margin=0.8),
                 init_cfg: Optional[dict] = None):
        if init_cfg is None:
            init_cfg = self.default_init_cfg
        super().__init__(in_channels, input_index, init_cfg)
        if desc_dim < 1:
            raise ValueError(f'desc_dim must be >= 1, got {desc_dim}')
        self.desc_dim = desc_dim
        self._build_layers(feat_channels, num_convs, desc_dim, norm_cfg,
                           act_cfg)
        self.loss_module = MODELS.build(loss)

    @property
    def default_init_cfg(self):
        # a non-zero output bias keeps descriptors of pixels whose features
        # are all zero (dead ReLUs) away from the zero vector
        return [
            dict(
                type='Kaiming',
                layer='Conv2d',
                nonlinearity='relu',
                override=dict(
                    type='Kaiming',
                    name='final_layer',
                    nonlinearity='linear',
                    bias=0.01)),
            dict(type='Constant', layer=['BatchNorm2d', 'GroupNorm'], val=1)
        ]

    def forward(self, feats: Features) -> Tensor:
        """Predict the unit-length descriptor volume.

        Args:
            feats (Tensor | tuple[Tensor]): Feature map(s) ``(B, C, h, w)``.

        Returns:
            Tensor: Descriptor map ``(B, desc_dim, h, w)`` with unit L2 norm
            along dim 1.
        """
        x = self._transform_inputs(feats)
        return F.normalize(self.final_layer(self.conv_layers(x)), dim=1)

    def loss(self, desc_map: Tensor, keypoints: Tensor, labels: Tensor,
             valid: Tensor, stride: float) -> Dict[str, Tensor]:
        """Contrastive loss of the descriptors at the pseudo-labels.

        Args:
            desc_map (Tensor): (B, D, h, w) output of :meth:`forward`.
            keypoints (Tensor): (B, K, 2) pseudo-labels, input pixels.
            labels (Tensor): (B, K) their cluster labels.
            valid (Tensor): (B, K) bool.
            stride (float): Map stride in input pixels.

        Returns:
            dict: ``loss_descriptor``.
        """
        desc = sample_descriptors(desc_map, keypoints, stride)
        # the loss selects the valid descriptors itself (one selection,
        # instead of two boolean indexings that each wait for the device)
        return dict(loss_descriptor=self.loss_module(
            desc.reshape(-1, desc.shape[-1]), labels.reshape(-1),
            valid=valid.reshape(-1)))
