# Copyright (c) mmuld contributors. All rights reserved.
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmuld.registry import MODELS


@MODELS.register_module()
class ELBOLoss(nn.Module):
    """Negative ELBO of the pose-guided proxy-task VAE (paper Sec. 3.3.1).

    ``loss_recon``: reconstruction of the pseudo ground truth ``G`` from the
    decoder logits, summed over pixels and averaged over the batch:

    * ``'bce'``: ``BCEWithLogits(recon, G)`` (``G`` in ``[0, 1]``);
    * ``'mse'``: ``(sigmoid(recon) - G)^2`` (``recon_sigmoid=True``) or
      ``(recon - G)^2``.

    ``loss_kl``: ``KL(N(mu, sigma^2) || N(0, I)) =
    -0.5 * sum(1 + logvar - mu^2 - exp(logvar))`` summed over latent dims
    and averaged over the batch.

    With ``reduction='mean'`` the reconstruction term is averaged over
    pixels as well (and KL over latent dims) instead of summed. With
    ``reduction='per_pixel'`` both summed terms are divided by the number of
    heatmap pixels: the same ELBO (the KL / reconstruction balance of the
    VAE is unchanged) on the per-pixel scale of the detector's MSE, so
    neither loss starves the other under global gradient clipping.

    Args:
        recon_weight (float): Weight of the reconstruction term.
            Defaults to 1.0.
        kl_weight (float): Weight of the KL term (beta). Defaults to 1.0.
        recon_type (str): ``'bce'`` or ``'mse'``. Defaults to ``'bce'``.
        recon_sigmoid (bool): For ``'mse'``, apply a sigmoid to the logits
            first. Defaults to True.
        reduction (str): ``'sum'`` (per-sample sums, batch mean),
            ``'mean'`` (element means) or ``'per_pixel'`` (per-sample sums
            divided by the pixels of one heatmap). Defaults to ``'sum'``.
        loss_weight (float): Global weight applied to both terms.
            Defaults to 1.0.
    """

    def __init__(self,
                 recon_weight: float = 1.0,
                 kl_weight: float = 1.0,
                 recon_type: str = 'bce',
                 recon_sigmoid: bool = True,
                 reduction: str = 'sum',
                 loss_weight: float = 1.0):
        super().__init__()
        if recon_type not in ('bce', 'mse'):
            raise ValueError(
                f"recon_type must be 'bce' or 'mse', got {recon_type!r}")
        if reduction not in ('sum', 'mean', 'per_pixel'):
            raise ValueError("reduction must be 'sum', 'mean' or "
                             f"'per_pixel', got {reduction!r}")
        self.recon_weight = recon_weight
        self.kl_weight = kl_weight
        self.recon_type = recon_type
        self.recon_sigmoid = recon_sigmoid
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self, recon: Tensor, target: Tensor, mu: Tensor,
                logvar: Tensor) -> Dict[str, Tensor]:
        """Compute the two ELBO terms.

        Args:
            recon (Tensor): Decoder logits ``(B, C, h, w)``.
            target (Tensor): Pseudo ground truth ``G`` ``(B, C, h, w)``.
            mu (Tensor): ``(B, latent_dim)`` posterior means.
            logvar (Tensor): ``(B, latent_dim)`` posterior log-variances.

        Returns:
            dict[str, Tensor]: ``loss_recon`` and ``loss_kl`` (already
            weighted); their sum is the weighted negative ELBO.
        """
        if recon.shape != target.shape:
            raise ValueError(f'recon shape {tuple(recon.shape)} does not '
                             f'match target shape {tuple(target.shape)}')
        if mu.shape != logvar.shape or mu.dim() != 2 or \
                mu.shape[0] != recon.shape[0]:
            raise ValueError('mu and logvar must both have shape '
                             f'(B={recon.shape[0]}, latent_dim), got '
                             f'{tuple(mu.shape)} and {tuple(logvar.shape)}')
        if recon.shape[0] == 0:
            zero = recon.sum() * 0.0 + mu.sum() * 0.0 + logvar.sum() * 0.0
            return dict(loss_recon=zero, loss_kl=zero.clone())
        if self.recon_type == 'bce':
            rec = F.binary_cross_entropy_with_logits(
                recon, target, reduction='none')
        else:
            pred = recon.sigmoid() if self.recon_sigmoid else recon
            rec = (pred - target)**2
        kl = -0.5 * (1 + logvar - mu.pow(2) - torch.exp(logvar))
        if self.reduction in ('sum', 'per_pixel'):
            rec = rec.flatten(1).sum(1).mean()
            kl = kl.sum(1).mean()
            if self.reduction == 'per_pixel':
                npix = float(target[0].numel())
                rec, kl = rec / npix, kl / npix
        else:
            rec = rec.mean()
            kl = kl.mean()
        w = self.loss_weight
        return dict(
            loss_recon=rec * self.recon_weight * w,
            loss_kl=kl * self.kl_weight * w)
