# Copyright (c) mmuld contributors. All rights reserved.
"""D-ULD / D-ULD++ landmark estimator (paper Sec. 3.2 and 3.3)."""
from typing import Callable, Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from mmpose.models.pose_estimators.base import BasePoseEstimator
from mmpose.models.pose_estimators.topdown import TopdownPoseEstimator
from mmpose.utils.typing import (ConfigType, OptConfigType, OptMultiConfig,
                                 SampleList)
from torch import Tensor

from mmuld.registry import MODELS
from ..utils.affine import random_affine_pair
from ..utils.candidates import select_candidates
from ..utils.keypoint_ops import sample_descriptors
from ..utils.self_training_augment import (photometric_change,
                                           pseudo_label_batch)
from .landmark_decoder import LandmarkDecoder
from .stages import STAGE_NAMES, VAE_STAGES, Stage, StageSchedule
from .uld_cfg import ULDTestCfg, ULDTrainCfg
from .uld_state import ULDStateMixin
from .utils import detector_grad_norms, to_pred_instances


@MODELS.register_module()
class ULDEstimator(ULDStateMixin, BasePoseEstimator):
    """Unsupervised landmark discovery model (D-ULD and D-ULD++).

    ``Psi = (Psi_b, Psi_d, Psi_f[, Psi_V])``: the backbone with its
    aggregation network gives ``F_ag``; the detector head a keypoint heatmap
    ``H``; the descriptor head a descriptor volume ``F``; the optional
    :class:`PoseVAENeck` maps ``H`` to the latent pose code ``phi``. The
    heads and the neck own their losses; this class routes the losses of
    the current :attr:`stage` (set by :class:`ULDTrainLoop`):

    - ``'bootstrap'``: SiLK-style self-supervision between an image and a
      warped copy (:class:`BootstrapLoss` on detector and descriptors).
    - ``'duld'``: self-training on pseudo-labels: the detector's and the
      descriptor head's losses.
    - ``'proxy'``: the detector's loss and the VAE's ELBO (Sec. 3.3.1).
    - ``'dldpp'``: the detector's loss and, by the stage's ``objective``,
      Eq. 3 on the encoder's codes, the whole ELBO or D-ULD's descriptor
      loss.

    The model owns its training state: the stage table (``stages``, read by
    :class:`ULDTrainLoop`) and, as buffers, the pseudo-label bank of the
    last clustering round (``uld_pl_*``) and its centroids
    (``uld_centroids``, ``uld_pose_centroids``); a checkpoint's
    ``state_dict`` restores all of it and suffices for inference.

    Args:
        backbone (dict): Backbone config.
        detector_head (dict): :class:`ULDDetectorHead` config.
        descriptor_head (dict): :class:`ULDDescriptorHead` config.
        pose_vae (dict, optional): :class:`PoseVAENeck` config (D-ULD++).
        loss_bootstrap (dict): Bootstrapping loss config.
        num_landmarks (int): K, landmarks to discover. Defaults to 10.
        stages (Sequence[dict], optional): The stage table
            (:class:`StageSchedule`); needed for training, not inference.
        train_cfg (dict, optional): :class:`ULDTrainCfg` fields.
        test_cfg (dict, optional): :class:`ULDTestCfg` fields.
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
                 num_landmarks: int = 10,
                 stages: Optional[Sequence[dict]] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 metainfo: Optional[dict] = None):
        # BasePoseEstimator.__init__ insists on a single `head`
        BaseModel.__init__(
            self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.metainfo = self._load_metainfo(metainfo)
        self.train_cfg = ULDTrainCfg.from_cfg(train_cfg, 'train_cfg')
        self.test_cfg = ULDTestCfg.from_cfg(test_cfg, 'test_cfg')
        self.stage_schedule = StageSchedule(stages) if stages else None
        self.backbone = MODELS.build(backbone)
        self.detector_head = MODELS.build(detector_head)
        self.descriptor_head = MODELS.build(descriptor_head)
        self.pose_vae = MODELS.build(pose_vae) if pose_vae else None
        self.loss_bootstrap = MODELS.build(loss_bootstrap)
        self.num_landmarks = num_landmarks
        self.stage, self.objective = 'bootstrap', None
        self._init_state()

    # ------------------------------------------------------------------ #
    # state
    # ------------------------------------------------------------------ #
    def set_stage(self, stage: Union[str, Stage]) -> None:
        """Switch the training stage (see class docstring).

        Args:
            stage (str | Stage): A stage of the table, or a stage name
                (its objective is then that of the table's first stage of
                that name, else the default).
        """
        name = stage.name if isinstance(stage, Stage) else stage
        if name not in STAGE_NAMES:
            raise ValueError(
                f'unknown stage {name!r}, expected {STAGE_NAMES}')
        if name in VAE_STAGES and self.pose_vae is None:
            raise ValueError(f'stage {name!r} needs a `pose_vae` neck')
        if not isinstance(stage, Stage) and self.stage_schedule:
            stage = self.stage_schedule.first(name)
        self.stage = name
        self.objective = stage.objective if isinstance(stage, Stage) else (
            'latent' if name == 'dldpp' else None)

    @property
    def stride(self) -> float:
        """Stride of the head maps with respect to the input."""
        return float(self.backbone.out_stride)

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def _forward(self, inputs: Tensor, data_samples=None) -> tuple:
        """Network forward: heatmap logits and descriptor maps."""
        feats = self.extract_feat(inputs)
        return self.detector_head(feats), self.descriptor_head(feats)

    def descriptor_map(self, inputs: Tensor) -> Tensor:
        """The descriptor volume F of a batch, ``(B, D, h, w)``."""
        return self.descriptor_head(self.extract_feat(inputs))

    def extract_keypoints(self, inputs: Tensor, candidates: str = 'nms',
                          min_keypoints: int = 0,
                          **corner_kwargs) -> Dict[str, Tensor]:
        """Network forward and landmark candidates with their descriptors.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            candidates (str): ``'nms'``, ``'dense'`` or ``'corners'``
                (:func:`select_candidates`, with ``test_cfg``'s options).
            min_keypoints (int): Detector candidates kept per image even
                below ``test_cfg.score_thr`` (K in clustering rounds, so
                that a detector still learning cannot starve a round).
            **corner_kwargs: ``boxes``, ``corner_window`` and
                ``corner_spacing`` of corner candidates.

        Returns:
            dict: ``keypoints`` (B, N, 2) in input pixels, ``scores``,
            ``valid`` (B, N), ``descriptors`` (B, N, D), ``heatmap``
            (B, 1, h, w), ``desc_map``, ``candidates`` and, with a VAE,
            ``codes`` (B, Dz) (the posterior means).
        """
        cfg = self.test_cfg
        logits, desc_map = self._forward(inputs)
        heat = logits.sigmoid()
        kpts, scores, valid = select_candidates(
            candidates, heat, self.stride, score_thr=cfg.score_thr,
            nms_kernel=cfg.nms_kernel, max_keypoints=cfg.max_keypoints,
            dense_max_keypoints=cfg.dense_max_keypoints, border=cfg.border,
            subpixel=cfg.subpixel, min_keypoints=min_keypoints,
            inputs=inputs, **corner_kwargs)
        out = dict(
            keypoints=kpts, scores=scores, valid=valid,
            descriptors=sample_descriptors(desc_map, kpts, self.stride),
            heatmap=heat, desc_map=desc_map, candidates=candidates)
        if self.pose_vae is not None:
            out['codes'] = self.pose_vae.encode(heat)[0]
        return out

    # ------------------------------------------------------------------ #
    # losses
    # ------------------------------------------------------------------ #
    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of the current stage (:meth:`stage_loss`); the samples
        carry ``sample_idx`` (the index into the pseudo-label bank)."""
        return self.stage_loss(self.stage)(inputs, data_samples)

    def stage_loss(self, stage: str) -> Callable[[Tensor, SampleList], dict]:
        """The loss method ``_loss_<stage>``: ``(inputs, data_samples) ->
        dict`` of named losses."""
        if stage not in STAGE_NAMES:
            raise ValueError(
                f'unknown stage {stage!r}, expected {STAGE_NAMES}')
        return getattr(self, f'_loss_{stage}')

    def _loss_bootstrap(self, inputs: Tensor,
                        data_samples: Optional[SampleList] = None) -> dict:
        """SiLK-style bootstrapping between an image and a warped copy that
        may also differ in scale, position and colour (no pseudo-labels)."""
        cfg = self.train_cfg
        pair = random_affine_pair(
            inputs, max_rotation=cfg.max_rotation, flip_prob=cfg.flip_prob,
            scale_range=cfg.boot_scale_range, max_shift=cfg.boot_max_shift)
        copies = pair.images
        if cfg.boot_photometric:
            photo = cfg.boot_photometric
            copies = photometric_change(
                copies, **({} if photo is True else photo))
        feats = self.extract_feat(torch.cat([inputs, copies]))
        logits = self.detector_head(feats)
        desc = self.descriptor_head(feats)
        b = inputs.shape[0]
        return self.loss_bootstrap(logits[:b], desc[:b], logits[b:], desc[b:],
                                   pair.matrices, self.stride)

    def _loss_duld(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """D-ULD self-training (Sec. 3.2): the detector's and the descriptor
        head's losses on the pseudo-labels; with
        ``correspondence_weight`` w > 0 also w times the bootstrapping
        descriptor loss (``loss_correspondence``), which keeps what
        bootstrapping taught a backbone trained from scratch
        (docs/methods.md, "Keeping the correspondence")."""
        losses = self._self_training(inputs, data_samples, descriptors=True)
        w = self.train_cfg.correspondence_weight
        if w:
            boot = self._loss_bootstrap(inputs)
            losses['loss_correspondence'] = w * boot['loss_boot_desc']
        return losses

    def _loss_proxy(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Pose-guided proxy task (Sec. 3.3.1): the detector's loss and the
        ELBO of the VAE reconstructing the pseudo ground truth."""
        return self._self_training(inputs, data_samples, vae='elbo')

    def _loss_dldpp(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """D-ULD++ (Sec. 3.3.2), by the stage's ``objective``: the
        detector's loss and Eq. 3 on the encoder's codes (``'latent'``),
        the whole ELBO (``'elbo'``) or D-ULD's losses (``'duld'``)."""
        objective = self.objective
        if objective == 'duld':
            self._check_kmeans_labels()
            return self._self_training(inputs, data_samples,
                                       descriptors=True)
        return self._self_training(inputs, data_samples, vae=objective)

    def _self_training(self, inputs: Tensor, data_samples: SampleList,
                       descriptors: bool = False,
                       vae: Optional[str] = None) -> dict:
        """Losses of a self-training stage on the batch's pseudo-labels
        (augmented with the images when ``train_cfg.augment``).

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): ``sample_idx`` in metainfo.
            descriptors (bool): Add the descriptor head's loss.
            vae (str, optional): ``'elbo'`` adds the VAE's ELBO (with the
                gradient norm each loss sends into the detector, logged),
                ``'latent'`` Eq. 3 on the encoder's codes.

        Returns:
            dict: ``loss_heatmap`` and the terms asked for.
        """
        inputs, pl = pseudo_label_batch(self.pseudo_labels, inputs,
                                        data_samples, self.train_cfg.augment,
                                        self.stage)
        feats = self.extract_feat(inputs)
        logits = self.detector_head(feats)
        heat = logits.sigmoid()
        target = self.detector_head.get_targets(
            pl['keypoints'], pl['valid'], heat.shape[-2:], self.stride,
            self.train_cfg.sigma)
        losses = self.detector_head.loss(logits, target)
        if descriptors:
            losses.update(self.descriptor_head.loss(
                self.descriptor_head(feats), pl['keypoints'], pl['labels'],
                pl['valid'], self.stride))
        if vae == 'elbo':
            losses.update(self.pose_vae.loss_proxy(
                heat.detach() if self.train_cfg.detach_vae_input else heat,
                target))
            if torch.is_grad_enabled() and logits.requires_grad:
                losses.update(detector_grad_norms(logits, losses))
        elif vae == 'latent':
            losses.update(self.pose_vae.loss_pose(heat, pl['pose_labels']))
        return losses

    def _check_kmeans_labels(self) -> None:
        """A last stage trained like D-ULD ("+ PP") needs K-means labels,
        not the two-stage clustering labels of the bank."""
        bank = self.pseudo_labels
        if bank is not None and bank.pose_labels.any():
            raise ValueError(
                'objective="duld" trains the dldpp stage on K-means '
                'pseudo-labels, but the bank holds two-stage '
                "clustering labels: give the dldpp stage pseudo_labels="
                "'kmeans' (not 'two_stage') in model.stages")

    # ------------------------------------------------------------------ #
    # prediction
    # ------------------------------------------------------------------ #
    @property
    def decoder(self) -> LandmarkDecoder:
        """LandmarkDecoder: ``test_cfg``'s decoding of the centroids."""
        cfg = self.test_cfg
        return LandmarkDecoder(self.stride, cfg.decode, cfg.border,
                               cfg.softargmax_temperature)

    def assign_landmarks(self, out: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Turn the candidates of :meth:`extract_keypoints` into K
        identified landmarks (:class:`LandmarkDecoder`, with the centroids
        of each image's pose cluster). Without centroids (after
        bootstrapping only) the K highest-scoring candidates are returned.

        Returns:
            dict: ``keypoints`` (B, K, 2), ``scores`` (B, K), ``visible``
            (B, K) in {0, 1}, ``pose_labels`` (B,) and ``descriptors``.
        """
        kpts, valid = out['keypoints'], out['valid']
        if self.uld_centroids.numel() == 0:
            return LandmarkDecoder.first_k(self.num_landmarks, kpts,
                                           out['scores'], out['descriptors'],
                                           valid)
        pose = self.pose_of(out.get('codes'), kpts.shape[0], kpts.device)
        return self.decoder(
            self.uld_centroids, kpts, out['descriptors'], valid, pose=pose,
            scores=out['scores'], desc_map=out.get('desc_map'),
            refine=out.get('candidates') == 'dense')

    def input_landmarks(self, inputs: Tensor, data_samples: SampleList,
                        points: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """K landmarks per image in input pixels (``test_cfg``'s
        candidates and decoding); ``points`` is for the ZeroShot
        interface and is not used."""
        cfg = self.test_cfg
        return self.assign_landmarks(self.extract_keypoints(
            inputs, candidates=cfg.candidates,
            min_keypoints=cfg.num_min_keypoints(self.num_landmarks)))

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: SampleList) -> SampleList:
        """Discover K landmarks per image.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): Samples with
                ``input_center``, ``input_scale`` and ``input_size``.

        Returns:
            list[PoseDataSample]: ``pred_instances`` with ``keypoints``
            (1, K, 2) in image coordinates, ``keypoint_scores``,
            ``keypoints_visible`` (0: no exemplar for that landmark),
            ``pose_label`` and, with ``test_cfg.output_descriptors``, the
            landmarks' ``descriptors``.
        """
        res = self.input_landmarks(inputs, data_samples)
        keys = ['pose_labels']
        if self.test_cfg.output_descriptors:
            keys.append('descriptors')
        preds = to_pred_instances(res, keys)
        return self.add_pred_to_datasample(preds, None, data_samples)

    add_pred_to_datasample = TopdownPoseEstimator.add_pred_to_datasample
