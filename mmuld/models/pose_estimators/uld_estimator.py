# Copyright (c) mmuld contributors. All rights reserved.
"""D-ULD / D-ULD++ landmark estimator (paper Sec. 3.2 and 3.3)."""
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import BaseModel
from mmpose.models.pose_estimators.base import BasePoseEstimator
from mmpose.models.pose_estimators.topdown import TopdownPoseEstimator
from mmpose.utils.typing import (ConfigType, OptConfigType, OptMultiConfig,
                                 SampleList)
from torch import Tensor

from mmuld.clustering import image_exemplars
from mmuld.registry import MODELS
from ..utils.affine import random_affine_pair
from ..utils.keypoint_ops import (heatmap_nms, render_gaussian_heatmap,
                                  sample_descriptors)
from .utils import adopt_buffer_shapes, gather_landmarks, to_pred_instances

STAGES = ('bootstrap', 'duld', 'proxy', 'dldpp')


@MODELS.register_module()
class ULDEstimator(BasePoseEstimator):
    """Unsupervised landmark discovery model (D-ULD and D-ULD++).

    ``Psi = (Psi_b, Psi_d, Psi_f[, Psi_V])``: the Stable Diffusion backbone
    with its aggregation network gives ``F_ag``; the detector head gives a
    single-channel keypoint heatmap ``H``; the descriptor head a descriptor
    volume ``F``; the optional :class:`PoseVAENeck` maps ``H`` to the latent
    pose code ``phi``.

    The training behaviour depends on :attr:`stage`, set by
    :class:`ULDStageHook`:

    - ``'bootstrap'``: SiLK-style self-supervision between an image and a
      copy under a known random flip/rotation (BCE on the detector, NLL
      matching on descriptors).
    - ``'duld'``: self-training on pseudo-labels (MSE on the detector,
      contrastive loss on the descriptors of the pseudo-labelled keypoints).
    - ``'proxy'``: pose-guided proxy task; detector MSE plus the ELBO of the
      VAE reconstructing the pseudo ground-truth heatmap ``G``.
    - ``'dldpp'``: detector MSE on two-stage-clustering pseudo-labels plus the
      latent contrastive loss (Eq. 3) on the encoder's codes; the VAE decoder
      is not used.

    Pseudo-labels come from :class:`PseudoLabelHook` through
    :meth:`set_pseudo_labels`. The cluster centroids of the last round are
    buffers, so a checkpoint alone suffices for inference.

    Args:
        backbone (dict): Backbone config (``StableDiffusionBackbone``).
        detector_head (dict): Detector head config.
        descriptor_head (dict): Descriptor head config.
        pose_vae (dict, optional): :class:`PoseVAENeck` config (D-ULD++).
        loss_bootstrap (dict): Bootstrapping loss config.
        loss_heatmap (dict): Detector self-training loss config.
        loss_descriptor (dict): Descriptor contrastive loss config.
        loss_elbo (dict, optional): ELBO loss config (proxy task).
        loss_latent (dict, optional): Latent contrastive loss (Eq. 3).
        num_landmarks (int): K, landmarks to discover. Defaults to 10.
        train_cfg (dict, optional): ``sigma`` of the pseudo-label Gaussians
            (map pixels), ``max_rotation`` / ``flip_prob`` of the
            bootstrapping augmentation, ``detach_vae_input`` (the ELBO does
            not reach the detector; default True) and ``dldpp_objective``
            (``'latent'``: Eq. 3, default; ``'elbo'``: keep the full VAE,
            the "TSC w/ full VAE" ablation).
        test_cfg (dict, optional): ``nms_kernel``, ``score_thr``,
            ``max_keypoints`` of the keypoint extraction.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
        metainfo (dict, optional): Dataset meta information.
    """

    def __init__(self,
                 backbone: ConfigType,
                 detector_head: ConfigType,
                 descriptor_head: ConfigType,
                 pose_vae: OptConfigType = None,
                 loss_bootstrap: ConfigType = dict(type='BootstrapLoss'),
                 loss_heatmap: ConfigType = dict(type='HeatmapMSELoss'),
                 loss_descriptor: ConfigType = dict(
                     type='DescriptorContrastiveLoss', margin=0.8),
                 loss_elbo: OptConfigType = dict(type='ELBOLoss'),
                 loss_latent: OptConfigType = dict(
                     type='LatentContrastiveLoss', margin=1.0),
                 num_landmarks: int = 10,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 metainfo: Optional[dict] = None):
        # BasePoseEstimator.__init__ insists on a single `head`; set up the
        # same attributes here instead.
        BaseModel.__init__(
            self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.metainfo = self._load_metainfo(metainfo)
        self.train_cfg = train_cfg if train_cfg else {}
        self.test_cfg = test_cfg if test_cfg else {}
        self.backbone = MODELS.build(backbone)
        self.detector_head = MODELS.build(detector_head)
        self.descriptor_head = MODELS.build(descriptor_head)
        self.pose_vae = MODELS.build(pose_vae) if pose_vae else None
        self.loss_bootstrap = MODELS.build(loss_bootstrap)
        self.loss_heatmap = MODELS.build(loss_heatmap)
        self.loss_descriptor = MODELS.build(loss_descriptor)
        self.loss_elbo = MODELS.build(loss_elbo) if loss_elbo else None
        self.loss_latent = MODELS.build(loss_latent) if loss_latent else None
        self.num_landmarks = num_landmarks
        self.stage = 'bootstrap'
        self.pseudo_labels = None
        # Centroids of the last clustering round: (Q', K, D), Q' = 1 for plain
        # K-means; pose centroids (Q, Dz) only with two-stage clustering.
        self.register_buffer('uld_centroids', torch.zeros(0, 0, 0))
        self.register_buffer('uld_pose_centroids', torch.zeros(0, 0))

    # ------------------------------------------------------------------ #
    # state
    # ------------------------------------------------------------------ #
    def set_stage(self, stage: str) -> None:
        """Switch the training stage (see class docstring)."""
        if stage not in STAGES:
            raise ValueError(f'unknown stage {stage!r}, expected {STAGES}')
        if stage in ('proxy', 'dldpp') and self.pose_vae is None:
            raise ValueError(f'stage {stage!r} needs a `pose_vae` neck')
        self.stage = stage

    def set_pseudo_labels(self, bank) -> None:
        """Hand the pseudo-labels of a clustering round to the model.

        Args:
            bank (PseudoLabelBank): Pseudo-labels; its ``centroids`` and
                ``pose_centroids`` (if any) are copied into the buffers.
        """
        self.pseudo_labels = bank

    def set_centroids(self, centroids: Tensor,
                      pose_centroids: Optional[Tensor] = None) -> None:
        """Store the cluster centroids used at inference.

        Args:
            centroids (Tensor): (K, D) or (Q, K, D) landmark centroids.
            pose_centroids (Tensor, optional): (Q, Dz) pose centroids.
        """
        if centroids.dim() == 2:
            centroids = centroids[None]
        self.uld_centroids = centroids.detach().to(
            self.uld_centroids.device, torch.float32)
        if pose_centroids is None:
            pose_centroids = torch.zeros(0, 0)
        self.uld_pose_centroids = pose_centroids.detach().to(
            self.uld_centroids.device, torch.float32)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        adopt_buffer_shapes(self, state_dict, prefix,
                            ('uld_centroids', 'uld_pose_centroids'))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def stride(self) -> float:
        """Stride of the head maps with respect to the input."""
        return float(self.backbone.out_stride)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def _forward(self, inputs: Tensor, data_samples=None) -> Tuple[Tensor]:
        """Network forward: heatmap logits and descriptor maps."""
        feats = self.extract_feat(inputs)
        return self.detector_head(feats), self.descriptor_head(feats)

    def extract_keypoints(self, inputs: Tensor) -> Dict[str, Tensor]:
        """Detector + descriptor forward with NMS keypoints.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].

        Returns:
            dict: ``keypoints`` (B, N, 2) in input pixels, ``scores`` (B, N),
            ``valid`` (B, N), ``descriptors`` (B, N, D), ``heatmap``
            (B, 1, h, w) probabilities and, with a VAE, ``codes`` (B, Dz)
            (the posterior means).
        """
        cfg = self.test_cfg
        logits, desc_map = self._forward(inputs)
        heat = logits.sigmoid()
        kpts, scores, valid = heatmap_nms(
            heat,
            kernel_size=cfg.get('nms_kernel', 3),
            score_thr=cfg.get('score_thr', 0.0),
            max_keypoints=cfg.get('max_keypoints', 50),
            border=cfg.get('border', 1))
        kpts = (kpts + 0.5) * self.stride - 0.5
        out = dict(
            keypoints=kpts,
            scores=scores,
            valid=valid,
            descriptors=sample_descriptors(desc_map, kpts, self.stride),
            heatmap=heat)
        if self.pose_vae is not None:
            out['codes'] = self.pose_vae.encode(heat)[0]
        return out

    # ------------------------------------------------------------------ #
    # losses
    # ------------------------------------------------------------------ #
    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of the current stage.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): Samples with ``sample_idx``
                in their metainfo (index into the pseudo-label bank).

        Returns:
            dict: Named losses.
        """
        if self.stage == 'bootstrap':
            return self._loss_bootstrap(inputs)
        if self.pseudo_labels is None:
            raise RuntimeError(
                f'stage {self.stage!r} needs pseudo-labels, but no clustering '
                'round has run: add a PseudoLabelHook to `custom_hooks`')
        idx = [ds.metainfo['sample_idx'] for ds in data_samples]
        pl = self.pseudo_labels.lookup(idx, inputs.device)
        feats = self.extract_feat(inputs)
        logits = self.detector_head(feats)
        heat = logits.sigmoid()
        sigma = self.train_cfg.get('sigma', 1.0)
        target = render_gaussian_heatmap(pl['keypoints'], pl['valid'],
                                         heat.shape[-2:], self.stride, sigma)
        losses = dict(loss_heatmap=self.loss_heatmap(logits, target))

        if self.stage == 'duld':
            desc_map = self.descriptor_head(feats)
            desc = sample_descriptors(desc_map, pl['keypoints'], self.stride)
            valid = pl['valid'].reshape(-1)
            losses['loss_descriptor'] = self.loss_descriptor(
                desc.reshape(-1, desc.shape[-1])[valid],
                pl['labels'].reshape(-1)[valid])
        elif self.stage == 'proxy' or (
                self.stage == 'dldpp'
                and self.train_cfg.get('dldpp_objective') == 'elbo'):
            # proxy task (and the "TSC w/ full VAE" ablation of Table 2)
            vae_in = heat.detach() if self.train_cfg.get(
                'detach_vae_input', True) else heat
            out = self.pose_vae(vae_in)
            losses.update(
                self.loss_elbo(out['recon'], target, out['mu'],
                               out['logvar']))
        elif self.stage == 'dldpp':
            mu, _ = self.pose_vae.encode(heat)
            losses['loss_latent'] = self.loss_latent(mu, pl['pose_labels'])
        return losses

    def _loss_bootstrap(self, inputs: Tensor) -> dict:
        """SiLK-style bootstrapping between an image and a warped copy."""
        cfg = self.train_cfg
        pair = random_affine_pair(
            inputs,
            max_rotation=cfg.get('max_rotation', 30.0),
            flip_prob=cfg.get('flip_prob', 0.5))
        both = torch.cat([inputs, pair.images])
        feats = self.extract_feat(both)
        logits = self.detector_head(feats)
        desc = self.descriptor_head(feats)
        b = inputs.shape[0]
        return self.loss_bootstrap(logits[:b], desc[:b], logits[b:], desc[b:],
                                   pair.matrices, self.stride)

    # ------------------------------------------------------------------ #
    # prediction
    # ------------------------------------------------------------------ #
    def assign_landmarks(self, out: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Turn detected keypoints into K identified landmarks.

        Each keypoint goes to its nearest centroid (of the image's pose
        cluster with two-stage clustering); per cluster, the keypoint
        nearest to the centroid is the landmark (exemplar assignment).
        Without centroids (after bootstrapping only) the K highest-scoring
        keypoints are returned in score order.

        Args:
            out (dict): Output of :meth:`extract_keypoints`.

        Returns:
            dict: ``keypoints`` (B, K, 2), ``scores`` (B, K), ``visible``
            (B, K) in {0, 1}, ``pose_labels`` (B,) and the landmarks'
            ``descriptors`` (B, K, D).
        """
        kpts, valid, desc = out['keypoints'], out['valid'], out['descriptors']
        bsz, k = kpts.shape[0], self.num_landmarks
        pose = torch.zeros(bsz, dtype=torch.long, device=kpts.device)
        if self.uld_centroids.numel() == 0:
            # no clustering round yet: the K best keypoints, by score
            n = min(k, kpts.shape[1])
            idx = torch.full((bsz, k), -1, dtype=torch.long,
                             device=kpts.device)
            idx[:, :n] = torch.where(valid[:, :n],
                                     torch.arange(n, device=kpts.device), -1)
        else:
            if self.uld_pose_centroids.numel() and 'codes' in out:
                pose = torch.cdist(out['codes'],
                                   self.uld_pose_centroids).argmin(1)
            pose = pose.clamp(max=self.uld_centroids.shape[0] - 1)
            idx = torch.empty((bsz, k), dtype=torch.long, device=kpts.device)
            for q in pose.unique():
                sel = pose == q
                idx[sel] = image_exemplars(desc[sel], self.uld_centroids[q],
                                           valid[sel])[0]
        res = gather_landmarks(
            idx, keypoints=kpts, scores=out['scores'], descriptors=desc)
        res['pose_labels'] = pose
        return res

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: SampleList) -> SampleList:
        """Discover K landmarks per image.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): Samples with ``input_center``
                ``input_scale`` and ``input_size`` in their metainfo.

        Returns:
            list[PoseDataSample]: ``pred_instances`` with ``keypoints``
            (1, K, 2) in image coordinates, ``keypoint_scores`` (1, K),
            ``keypoints_visible`` (1, K) (0: no exemplar for that landmark),
            ``pose_label`` and, when ``test_cfg.output_descriptors``, the
            ``descriptors`` of the landmarks.
        """
        out = self.extract_keypoints(inputs)
        res = self.assign_landmarks(out)
        keys = ['pose_labels']
        if self.test_cfg.get('output_descriptors', True):
            keys.append('descriptors')
        preds = to_pred_instances(res, keys)
        return self.add_pred_to_datasample(preds, None, data_samples)

    add_pred_to_datasample = TopdownPoseEstimator.add_pred_to_datasample
