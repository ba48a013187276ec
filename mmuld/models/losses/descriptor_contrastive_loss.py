# Copyright (c) mmuld contributors. All rights reserved.
from typing import Optional

from torch import Tensor, nn

from mmuld.registry import MODELS
from .pairwise_contrastive import pairwise_contrastive_loss


@MODELS.register_module()
class DescriptorContrastiveLoss(nn.Module):
    """Cluster-supervised contrastive loss on keypoint descriptors.

    Self-training loss of the descriptor head (paper Sec. 3.2, after Mallis
    et al.): descriptors of keypoints with the same pseudo-label (cluster)
    are pulled together, descriptors of different clusters are pushed
    beyond the margin. All unordered pairs of the batch (or of a random
    subset of ``max_samples`` descriptors) are used; the positive and
    negative terms are each averaged over their pairs and added (see
    :func:`pairwise_contrastive_loss`).

    Args:
        margin (float): Margin of the negative hinge. Defaults to 0.8.
        squared (bool): Use squared distances and a squared hinge
            (Hadsell et al. 2006) instead of plain ones. Defaults to False.
        max_samples (int, optional): Cap on the number of descriptors used
            per call (random subset). Defaults to None (all).
        ignore_index (int): Descriptors with this label are ignored (e.g.
            padding / keypoints without exemplar). Defaults to -1.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 margin: float = 0.8,
                 squared: bool = False,
                 max_samples: Optional[int] = None,
                 ignore_index: int = -1,
                 loss_weight: float = 1.0):
        super().__init__()
        if margin < 0:
            raise ValueError(f'margin must be >= 0, got {margin}')
        if max_samples is not None and max_samples < 2:
            raise ValueError(f'max_samples must be >= 2, got {max_samples}')
        self.margin = margin
        self.squared = squared
        self.max_samples = max_samples
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self,
                descriptors: Tensor,
                labels: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            descriptors (Tensor): ``(P, D)`` (or ``(B, N, D)``, flattened)
                keypoint descriptors.
            labels (Tensor): ``(P,)`` (or ``(B, N)``) cluster labels.
            valid (Tensor, optional): Mask with the shape of ``labels``.

        Returns:
            Tensor: Scalar loss.
        """
        if descriptors.dim() == 3:
            descriptors = descriptors.flatten(0, 1)
            labels = labels.flatten()
            valid = valid.flatten() if valid is not None else None
        loss = pairwise_contrastive_loss(
            descriptors,
            labels,
            self.margin,
            squared=self.squared,
            valid=valid,
            max_samples=self.max_samples,
            ignore_index=self.ignore_index)
        return loss * self.loss_weight
