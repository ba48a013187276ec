# Copyright (c) mmuld contributors. All rights reserved.
from typing import Dict, Optional, Sequence

from torch import Tensor

from mmuld.registry import MODELS
from ..utils.keypoint_ops import render_gaussian_heatmap
from .base_uld_head import BaseULDDenseHead, Features


@MODELS.register_module()
class ULDDetectorHead(BaseULDDenseHead):
    """Landmark detector head Psi_d of D-ULD / D-ULD++ (paper Sec. 3.2).

    A few ``conv3x3-norm-act`` layers followed by a 1x1 conv that predicts a
    single-channel keypoint heatmap **logit** map ``H`` at the resolution of
    the input features. The sigmoid of the logits is the keypoint
    confidence; candidates are taken from it by
    :func:`mmuld.models.utils.candidates.select_candidates`. In the
    self-training stages the head renders the pseudo ground truth ``G`` of
    its pseudo-labels (:meth:`get_targets`) and computes its own loss
    (:meth:`loss`, :class:`HeatmapMSELoss` by default); bootstrapping trains
    it with the descriptor head through :class:`BootstrapLoss`.

    Args:
        in_channels (int): Channels of the input feature map.
        feat_channels (int): Channels of the intermediate convs.
            Defaults to 128.
        num_convs (int): Number of intermediate convs. Defaults to 2.
        norm_cfg (dict, optional): Norm layer config. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict, optional): Activation config. Defaults to ReLU.
        init_bias (float): Initial bias of the output conv; a negative value
            starts from a low keypoint prior. Defaults to -2.0.
        input_index (int): Feature map index when given a tuple.
            Defaults to -1.
        loss (dict): Self-training loss config. Defaults to
            ``dict(type='HeatmapMSELoss')``.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to :meth:`get_default_init_cfg` with ``init_bias``.
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: int = 128,
                 num_convs: int = 2,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_bias: float = -2.0,
                 input_index: int = -1,
                 loss: dict = dict(type='HeatmapMSELoss'),
                 init_cfg: Optional[dict] = None):
        if init_cfg is None:
            init_cfg = self.get_default_init_cfg(init_bias)
        super().__init__(in_channels, input_index, init_cfg)
        self.init_bias = init_bias
        self._build_layers(feat_channels, num_convs, 1, norm_cfg, act_cfg)
        self.loss_module = MODELS.build(loss)

    @staticmethod
    def get_default_init_cfg(init_bias: float = -2.0) -> list:
        """Kaiming convs, unit norms, small output conv with a bias prior.

        Args:
            init_bias (float): Bias of the output conv.

        Returns:
            list[dict]: The init config.
        """
        return [
            dict(
                type='Kaiming',
                layer='Conv2d',
                nonlinearity='relu',
                override=dict(
                    type='Normal',
                    name='final_layer',
                    std=0.01,
                    bias=init_bias)),
            dict(type='Constant', layer=['BatchNorm2d', 'GroupNorm'], val=1)
        ]

    def forward(self, feats: Features) -> Tensor:
        """Predict heatmap logits.

        Args:
            feats (Tensor | tuple[Tensor]): Feature map(s) ``(B, C, h, w)``.

        Returns:
            Tensor: Heatmap logits ``(B, 1, h, w)``.
        """
        x = self._transform_inputs(feats)
        return self.final_layer(self.conv_layers(x))

    @staticmethod
    def get_targets(keypoints: Tensor, valid: Tensor, map_size: Sequence[int],
                    stride: float, sigma: float) -> Tensor:
        """The pseudo ground truth ``G``: one Gaussian per pseudo-label.

        Args:
            keypoints (Tensor): (B, K, 2) pseudo-labels, input pixels.
            valid (Tensor): (B, K) bool.
            map_size (Sequence[int]): ``(h, w)`` of the heatmap.
            stride (float): Map stride in input pixels.
            sigma (float): Gaussian std, map pixels.

        Returns:
            Tensor: (B, 1, h, w) target heatmap.
        """
        return render_gaussian_heatmap(keypoints, valid, map_size, stride,
                                       sigma)

    def loss(self, logits: Tensor, target: Tensor) -> Dict[str, Tensor]:
        """Self-training loss of the heatmap logits against ``G``.

        Args:
            logits (Tensor): (B, 1, h, w) output of :meth:`forward`.
            target (Tensor): (B, 1, h, w) from :meth:`get_targets`.

        Returns:
            dict: ``loss_heatmap``.
        """
        return dict(loss_heatmap=self.loss_module(logits, target))
