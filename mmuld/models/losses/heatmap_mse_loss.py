# Copyright (c) mmuld contributors. All rights reserved.
from typing import Optional

import torch.nn.functional as F
from mmpose.models.losses import KeypointMSELoss
from torch import Tensor

from mmuld.registry import MODELS


@MODELS.register_module()
class HeatmapMSELoss(KeypointMSELoss):
    """MSE between the detector heatmap and the pseudo-label heatmap.

    Self-training loss of the detector head (paper Sec. 3.2). This is
    mmpose's :class:`KeypointMSELoss` (mean over all pixels, optional
    per-channel ``target_weights`` / ``skip_empty_channel`` / pixel
    ``mask``) with one addition: since :class:`ULDDetectorHead` outputs
    logits, ``use_sigmoid=True`` applies a sigmoid to the prediction first,
    so that it is compared with the ``[0, 1]`` Gaussian pseudo-label map
    (:func:`mmuld.models.utils.render_gaussian_heatmap`). With
    ``use_sigmoid=False`` it is exactly ``KeypointMSELoss``.

    Args:
        use_sigmoid (bool): Apply a sigmoid to the prediction.
            Defaults to True.
        use_target_weight (bool): Use per-channel target weights.
            Defaults to False.
        skip_empty_channel (bool): Ignore all-zero target channels.
            Defaults to False.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 use_target_weight: bool = False,
                 skip_empty_channel: bool = False,
                 loss_weight: float = 1.0):
        super().__init__(
            use_target_weight=use_target_weight,
            skip_empty_channel=skip_empty_channel,
            loss_weight=loss_weight)
        self.use_sigmoid = use_sigmoid

    def forward(self,
                output: Tensor,
                target: Tensor,
                target_weights: Optional[Tensor] = None,
                mask: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            output (Tensor): Predicted heatmaps (logits if ``use_sigmoid``)
                ``(B, K, h, w)``.
            target (Tensor): Target heatmaps ``(B, K, h, w)``.
            target_weights (Tensor, optional): ``(B, K)`` weights, used only
                when ``use_target_weight``.
            mask (Tensor, optional): Pixel mask broadcastable to ``target``.

        Returns:
            Tensor: Scalar loss.
        """
        if output.shape != target.shape:
            raise ValueError(f'output shape {tuple(output.shape)} does not '
                             f'match target shape {tuple(target.shape)}')
        if self.use_sigmoid:
            output = output.sigmoid()
        # mmpose's masking logic (target weights / empty channels / pixel
        # mask); the weighting is applied here so that the result does not
        # depend on whether the installed mmpose multiplies by loss_weight.
        _mask = self._get_mask(
            target, target_weights if self.use_target_weight else None, mask)
        _loss = F.mse_loss(output, target, reduction='none')
        if _mask is not None:
            _loss = _loss * _mask
        return _loss.mean() * self.loss_weight
