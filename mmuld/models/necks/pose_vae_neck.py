# Copyright (c) mmuld contributors. All rights reserved.
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmuld.registry import MODELS


@MODELS.register_module()
class PoseVAENeck(BaseModule):
    """Variational auto-encoder Psi_V of the pose-guided proxy task.

    Paper Sec. 3.3.1: the VAE takes the predicted single-channel landmark
    heatmap ``H`` (sigmoid of the detector logits), encodes it into a
    ``latent_dim``-d latent pose code ``phi`` and decodes ``phi`` into a
    reconstruction of the pseudo ground truth ``G`` (K Gaussians on one
    channel, see :func:`mmuld.models.utils.render_gaussian_heatmap`).

    Encoder: ``num_stages`` stride-2 ``conv3x3-norm-act`` blocks with
    ``base_channels * 2**i`` channels, flattened, then two linear layers
    predicting ``mu`` and ``logvar``. Decoder: a linear layer back to the
    encoder's last feature map followed by ``num_stages`` stride-2
    transposed convs and a 3x3 conv to ``in_channels`` **logits**, resized to
    ``heatmap_size`` if the strided sizes do not match exactly.

    In eval mode :meth:`reparameterize` is deterministic (``phi = mu``). For
    the D-ULD++ stage the decoder is discarded (:meth:`discard_decoder`, or
    build with ``with_decoder=False``) and only the encoder is trained with
    :class:`LatentContrastiveLoss`.

    Args:
        heatmap_size (int | Sequence[int]): Input / output size ``(h, w)``.
        in_channels (int): Channels of the input heatmap. Defaults to 1.
        latent_dim (int): Latent code dimension. Defaults to 64 (paper).
        base_channels (int): Channels of the first encoder stage.
            Defaults to 32.
        num_stages (int): Number of stride-2 stages. Defaults to 3.
        norm_cfg (dict, optional): Norm config of conv blocks.
            Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config.
            Defaults to ``dict(type='LeakyReLU', negative_slope=0.2)``.
        with_decoder (bool): Build the decoder. Defaults to True.
        logvar_range (tuple[float, float]): ``logvar`` is clamped to this
            range for numerical stability. Defaults to ``(-20., 10.)``.
        loss_elbo (dict, optional): ELBO config of the proxy task
            (:meth:`loss_proxy`). Defaults to ``dict(type='ELBOLoss')``.
        loss_latent (dict, optional): Latent contrastive loss config of the
            D-ULD++ stage (Eq. 3, :meth:`loss_pose`). Defaults to
            ``dict(type='LatentContrastiveLoss', margin=1.0)``.
        init_cfg (dict | list[dict], optional): Initialisation config.
    """

    def __init__(self,
                 heatmap_size: Union[int, Sequence[int]],
                 in_channels: int = 1,
                 latent_dim: int = 64,
                 base_channels: int = 32,
                 num_stages: int = 3,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: dict = dict(type='LeakyReLU', negative_slope=0.2),
                 with_decoder: bool = True,
                 logvar_range: Tuple[float, float] = (-20., 10.),
                 loss_elbo: Optional[dict] = dict(type='ELBOLoss'),
                 loss_latent: Optional[dict] = dict(
                     type='LatentContrastiveLoss', margin=1.0),
                 init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg)
        if isinstance(heatmap_size, int):
            heatmap_size = (heatmap_size, heatmap_size)
        if len(heatmap_size) != 2 or min(heatmap_size) < 1:
            raise ValueError(
                f'heatmap_size must be (h, w) > 0, got {heatmap_size}')
        for name, val in (('in_channels', in_channels),
                          ('latent_dim', latent_dim),
                          ('base_channels', base_channels),
                          ('num_stages', num_stages)):
            if not isinstance(val, int) or val < 1:
                raise ValueError(f'{name} must be a positive int, got {val}')
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.in_channels = in_channels
        self.latent_dim = latent_dim
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.logvar_range = logvar_range

        # encoder
        layers = []
        c_in = in_channels
        h, w = self.heatmap_size
        for i in range(num_stages):
            c_out = base_channels * 2**i
            layers.append(
                ConvModule(
                    c_in,
                    c_out,
                    3,
                    stride=2,
                    padding=1,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
            c_in = c_out
            h, w = (h + 1) // 2, (w + 1) // 2
        self.encoder = nn.Sequential(*layers)
        self.enc_channels = c_in
        self.enc_size = (h, w)
        flat = c_in * h * w
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)

        self.with_decoder = False
        if with_decoder:
            self._build_decoder()
        self.loss_elbo = MODELS.build(loss_elbo) if loss_elbo else None
        self.loss_latent = MODELS.build(loss_latent) if loss_latent else None

    def _build_decoder(self) -> None:
        c = self.enc_channels
        h, w = self.enc_size
        self.fc_decode = nn.Linear(self.latent_dim, c * h * w)
        layers = []
        for i in reversed(range(self.num_stages)):
            c_out = self.base_channels * 2**max(i - 1, 0)
            block = [
                nn.ConvTranspose2d(
                    c, c_out, 4, stride=2, padding=1,
                    bias=self.norm_cfg is None)
            ]
            if self.norm_cfg is not None:
                block.append(build_norm_layer(self.norm_cfg, c_out)[1])
            block.append(build_activation_layer(self.act_cfg))
            layers.append(nn.Sequential(*block))
            c = c_out
        layers.append(nn.Conv2d(c, self.in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*layers)
        self.with_decoder = True

    def discard_decoder(self) -> None:
        """Delete the decoder (D-ULD++ stage: only the encoder is kept)."""
        if self.with_decoder:
            del self.fc_decode
            del self.decoder
        self.with_decoder = False

    def _check_input(self, heatmaps) -> Tensor:
        if isinstance(heatmaps, (tuple, list)):
            if len(heatmaps) == 0:
                raise ValueError('PoseVAENeck got an empty tuple of inputs')
            heatmaps = heatmaps[-1]
        if not isinstance(heatmaps, Tensor) or heatmaps.dim() != 4 or \
                heatmaps.shape[1] != self.in_channels or \
                tuple(heatmaps.shape[2:]) != self.heatmap_size:
            raise ValueError(
                'PoseVAENeck expects heatmaps of shape '
                f'(B, {self.in_channels}, {self.heatmap_size[0]}, '
                f'{self.heatmap_size[1]}), got '
                f'{tuple(getattr(heatmaps, "shape", ()))}')
        return heatmaps

    def encode(self, heatmaps: Tensor) -> Tuple[Tensor, Tensor]:
        """Encode heatmaps into the posterior parameters.

        Args:
            heatmaps (Tensor): ``(B, in_channels, h, w)`` heatmaps ``H``.

        Returns:
            tuple[Tensor, Tensor]: ``mu`` and ``logvar``, each
            ``(B, latent_dim)``.
        """
        x = self.encoder(self._check_input(heatmaps)).flatten(1)
        mu = self.fc_mu(x)
        logvar = self.fc_logvar(x).clamp(*self.logvar_range)
        return mu, logvar

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Sample ``phi = mu + eps * exp(logvar / 2)`` (``mu`` in eval mode).

        Args:
            mu (Tensor): ``(B, latent_dim)`` posterior mean.
            logvar (Tensor): ``(B, latent_dim)`` posterior log-variance.

        Returns:
            Tensor: Latent codes ``(B, latent_dim)``.
        """
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z: Tensor) -> Tensor:
        """Decode latent codes into heatmap logits.

        Args:
            z (Tensor): ``(B, latent_dim)`` latent codes.

        Returns:
            Tensor: Reconstructed heatmap logits ``(B, in_channels, h, w)``.
        """
        if not self.with_decoder:
            raise RuntimeError('PoseVAENeck decoder was discarded '
                               '(with_decoder=False); cannot decode.')
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f'z must have shape (B, {self.latent_dim}), got '
                             f'{tuple(z.shape)}')
        x = self.fc_decode(z).view(-1, self.enc_channels, *self.enc_size)
        x = self.decoder(x)
        if tuple(x.shape[2:]) != self.heatmap_size:
            x = F.interpolate(
                x, size=self.heatmap_size, mode='bilinear',
                align_corners=False)
        return x

    def forward(self, heatmaps: Tensor) -> Dict[str, Optional[Tensor]]:
        """Encode, sample and (if the decoder exists) decode.

        Args:
            heatmaps (Tensor | tuple[Tensor]): ``(B, in_channels, h, w)``
                predicted heatmaps ``H`` with values in ``[0, 1]``.

        Returns:
            dict: ``mu``, ``logvar``, ``phi`` (``(B, latent_dim)``) and
            ``recon`` (``(B, in_channels, h, w)`` logits, or ``None`` when
            the decoder was discarded).
        """
        mu, logvar = self.encode(heatmaps)
        phi = self.reparameterize(mu, logvar)
        recon = self.decode(phi) if self.with_decoder else None
        return dict(mu=mu, logvar=logvar, phi=phi, recon=recon)

    def loss_proxy(self, heatmaps: Tensor,
                   target: Tensor) -> Dict[str, Tensor]:
        """ELBO of the proxy task: encode ``H``, reconstruct ``G``.

        Args:
            heatmaps (Tensor): ``(B, in_channels, h, w)`` heatmaps ``H``.
            target (Tensor): The pseudo ground truth ``G``, same shape.

        Returns:
            dict: ``loss_recon`` and ``loss_kl`` (:class:`ELBOLoss`).
        """
        if self.loss_elbo is None:
            raise RuntimeError('PoseVAENeck was built with loss_elbo=None')
        out = self(heatmaps)
        return self.loss_elbo(out['recon'], target, out['mu'], out['logvar'])

    def loss_pose(self, heatmaps: Tensor,
                  pose_labels: Tensor) -> Dict[str, Tensor]:
        """Latent contrastive loss (Eq. 3) on the encoder's means, against
        the pose clusters of two-stage clustering; the decoder is not used.

        Args:
            heatmaps (Tensor): ``(B, in_channels, h, w)`` heatmaps ``H``.
            pose_labels (Tensor): ``(B,)`` pose cluster of each image.

        Returns:
            dict: ``loss_latent``.
        """
        if self.loss_latent is None:
            raise RuntimeError('PoseVAENeck was built with loss_latent=None')
        mu, _ = self.encode(heatmaps)
        return dict(loss_latent=self.loss_latent(mu, pose_labels))
