# Copyright (c) mmuld contributors. All rights reserved.
from typing import Optional

from torch import Tensor, nn

from mmuld.registry import MODELS
from .pairwise_contrastive import pairwise_contrastive_loss


@MODELS.register_module()
class LatentContrastiveLoss(nn.Module):
    """Contrastive loss on the VAE latent pose codes (paper Eq. 3).

    .. math::

        L_d = 1[u_j = u_{j'}] ||\\phi_j - \\phi_{j'}|| +
              1[u_j \\ne u_{j''}] \\max(0, m - ||\\phi_j - \\phi_{j''}||)

    Every unordered pair of the batch is used: the positive term is averaged
    over all pairs with the same stage-1 (pose) label, the negative term
    over all pairs with different labels, and the two averages are added
    (see :func:`pairwise_contrastive_loss`). Plain (non-squared) distances,
    as in Eq. 3.

    Args:
        margin (float): Margin ``m``. Defaults to 0.8 (paper Sec. 4).
        ignore_index (int): Codes with this label are ignored (e.g. images
            without a pose-cluster label). Defaults to -1.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 margin: float = 0.8,
                 ignore_index: int = -1,
                 loss_weight: float = 1.0):
        super().__init__()
        if margin < 0:
            raise ValueError(f'margin must be >= 0, got {margin}')
        self.margin = margin
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight

    def forward(self,
                codes: Tensor,
                labels: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            codes (Tensor): ``(B, latent_dim)`` latent codes ``phi``.
            labels (Tensor): ``(B,)`` pose-cluster labels ``u``.
            valid (Tensor, optional): ``(B,)`` mask of codes to use.

        Returns:
            Tensor: Scalar loss (0, still attached to ``codes``, if the batch
            holds no pair).
        """
        loss = pairwise_contrastive_loss(
            codes,
            labels,
            self.margin,
            squared=False,
            valid=valid,
            ignore_index=self.ignore_index)
        return loss * self.loss_weight
