# Copyright (c) mmuld contributors. All rights reserved.
"""D-ULD / D-ULD++ landmark estimator (paper Sec. 3.2 and 3.3)."""
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModel
from mmpose.models.pose_estimators.base import BasePoseEstimator
from mmpose.models.pose_estimators.topdown import TopdownPoseEstimator
from mmpose.utils.typing import (ConfigType, OptConfigType, OptMultiConfig,
                                 SampleList)
from torch import Tensor

from mmuld.clustering import image_exemplars
from mmuld.clustering.dense_decoding import similarity_peaks
from mmuld.clustering.pseudo_label_bank import (BANK_BUFFER_PREFIX,
                                                PseudoLabelBank)
from mmuld.registry import MODELS
from ..utils.affine import random_affine_pair
from ..utils.keypoint_ops import (heatmap_nms, refine_subpixel,
                                  render_gaussian_heatmap, sample_descriptors)
from ..utils.self_training_augment import (augment_config,
                                           augment_with_labels,
                                           photometric_change)
from .stages import STAGE_NAMES, VAE_STAGES, StageSchedule
from .utils import adopt_buffer_shapes, gather_landmarks, to_pred_instances

# last-stage objectives: Eq. 3 (D-ULD++), the full VAE ("TSC w/ full VAE")
# and D-ULD's ("+ PP" ablation: no pose labels, no latent loss), with the
# pseudo-labels each one trains on
DLDPP_OBJECTIVES = dict(latent='two_stage', elbo=None, duld='kmeans')
_CENTROID_BUFFERS = ('uld_centroids', 'uld_pose_centroids')


class SelfTrainingBatch(NamedTuple):
    """What every self-training stage computes first (see
    :meth:`ULDEstimator._self_training`)."""

    pseudo_labels: Dict[str, Tensor]
    feats: Tuple[Tensor, ...]
    logits: Tensor
    heat: Tensor
    target: Tensor
    losses: Dict[str, Tensor]


@MODELS.register_module()
class ULDEstimator(BasePoseEstimator):
    """Unsupervised landmark discovery model (D-ULD and D-ULD++).

    ``Psi = (Psi_b, Psi_d, Psi_f[, Psi_V])``: the Stable Diffusion backbone
    with its aggregation network gives ``F_ag``; the detector head gives a
    single-channel keypoint heatmap ``H``; the descriptor head a descriptor
    volume ``F``; the optional :class:`PoseVAENeck` maps ``H`` to the latent
    pose code ``phi``.

    The training behaviour depends on :attr:`stage`, set by
    :class:`ULDTrainLoop`; each stage has its own loss method
    (``_loss_<stage>``, chosen by :meth:`loss`):

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

    The model owns its training state: the stage table (``stages``, read
    by :class:`ULDTrainLoop`), and, as buffers of its ``state_dict``, the
    pseudo-label bank of the last clustering round (``uld_pl_*``, set by
    :class:`ClusteringRounds` through :meth:`set_pseudo_labels`) and its
    cluster centroids (``uld_centroids``, ``uld_pose_centroids``). A
    checkpoint's ``state_dict`` alone restores all of it, and suffices for
    inference.

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
        stages (Sequence[dict], optional): The stage table of a training
            run, one dict per stage: ``name``, ``iters``, ``lr``,
            ``frozen`` and ``pseudo_labels`` (``None``, ``'kmeans'`` or
            ``'two_stage'``); see :class:`StageSchedule`. Needed for
            training with :class:`ULDTrainLoop`, not for inference.
        train_cfg (dict, optional): ``sigma`` of the pseudo-label Gaussians
            (map pixels), ``max_rotation`` / ``flip_prob`` of the
            bootstrapping augmentation (default 30 degrees and 0.5, the
            paper's flips and rotations), ``boot_scale_range``,
            ``boot_max_shift`` and ``boot_photometric`` (the warped copy
            of bootstrapping also differs in scale, position and colour,
            see :func:`photometric_change`; default off, the paper),
            ``correspondence_weight`` (weight
            of the bootstrapping descriptor loss kept during D-ULD
            self-training, ``loss_correspondence``; default 0, the paper;
            see :meth:`_loss_duld`), ``augment`` (random affine +
            photometric augmentation of the self-training stages, pseudo-
            labels warped alike; True = defaults of
            :func:`augment_with_labels`, a dict overrides them, False
            disables; default True), ``detach_vae_input`` (stop the ELBO at
            the detector; default False: the proxy task supervises the
            detector, Sec. 3.3.1) and ``dldpp_objective`` (``'latent'``:
            Eq. 3, default; ``'elbo'``: keep the full VAE, the "TSC w/ full
            VAE" ablation; ``'duld'``: train like D-ULD, detector MSE and
            descriptor contrastive loss on K-means pseudo-labels, no pose
            labels, the "+ PP" ablation).
        test_cfg (dict, optional): ``nms_kernel`` (odd NMS window in map
            cells; default 5, i.e. +-2 cells as Mallis et al.),
            ``score_thr`` (default 0.15, Mallis et al.'s confidence),
            ``max_keypoints``, ``border`` and ``subpixel`` (quadratic peak
            refinement, default True) of the keypoint extraction;
            ``candidates`` at test time (``'dense'``, default, as the
            clustering rounds, or ``'nms'``), ``dense_max_keypoints`` and
            ``min_keypoints`` (NMS peaks kept per image even below
            ``score_thr``; ``'k'``, default, means K) and
            ``softargmax_temperature`` (optional landmark decoding of dense
            candidates, see :meth:`_refine_on_similarity`) and ``decode``
            (``'exemplar'``, default, the paper, or ``'peaks'``: landmarks
            at the peaks of the centroid similarity maps, see
            :meth:`decode_mode`).
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
                 stages: Optional[Sequence[dict]] = None,
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
        objective = self.train_cfg.get('dldpp_objective', 'latent')
        if objective not in DLDPP_OBJECTIVES:
            raise ValueError(
                f'train_cfg.dldpp_objective={objective!r}, expected one of '
                f'{tuple(DLDPP_OBJECTIVES)}')
        corr = self.train_cfg.get('correspondence_weight', 0.0)
        if not corr >= 0:
            raise ValueError('train_cfg.correspondence_weight must be >= 0, '
                             f'got {corr!r}')
        self.stage_schedule = StageSchedule(stages) if stages else None
        self._check_objective(objective)
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
        # Centroids of the last clustering round: (Q', K, D), Q' = 1 for plain
        # K-means; pose centroids (Q, Dz) only with two-stage clustering.
        self.register_buffer('uld_centroids', torch.zeros(0, 0, 0))
        self.register_buffer('uld_pose_centroids', torch.zeros(0, 0))
        # the pseudo-label bank of the last round (uld_pl_keypoints, ...)
        for name, value in PseudoLabelBank.empty_buffers().items():
            self.register_buffer(BANK_BUFFER_PREFIX + name, value)
        # host copies of the bank's round / iteration buffers (reading a
        # CUDA buffer every iteration would wait for the device)
        self._pl_scalars: Optional[Dict[str, int]] = None

    def _check_objective(self, objective: str) -> None:
        """Refuse a last-stage objective whose pseudo-labels the stage
        table does not give (e.g. Eq. 3 without pose labels)."""
        need = DLDPP_OBJECTIVES[objective]
        if need is None or self.stage_schedule is None:
            return
        for stage in self.stage_schedule:
            if stage.name == 'dldpp' and stage.pseudo_labels != need:
                raise ValueError(
                    f'train_cfg.dldpp_objective={objective!r} trains the '
                    f"dldpp stage on pseudo_labels={need!r}, but the stage "
                    f'table gives it pseudo_labels={stage.pseudo_labels!r}')

    # ------------------------------------------------------------------ #
    # state
    # ------------------------------------------------------------------ #
    def set_stage(self, stage: str) -> None:
        """Switch the training stage (see class docstring)."""
        if stage not in STAGE_NAMES:
            raise ValueError(
                f'unknown stage {stage!r}, expected {STAGE_NAMES}')
        if stage in VAE_STAGES and self.pose_vae is None:
            raise ValueError(f'stage {stage!r} needs a `pose_vae` neck')
        self.stage = stage

    def set_pseudo_labels(self, bank: Optional[PseudoLabelBank]) -> None:
        """Hand the pseudo-labels of a clustering round to the model.

        The bank is stored in the ``uld_pl_*`` buffers (on the model's
        device), so the model's ``state_dict`` holds it.

        Args:
            bank (PseudoLabelBank, optional): Pseudo-labels; None forgets
                them.
        """
        values = PseudoLabelBank.empty_buffers() if bank is None \
            else bank.to_buffers()
        device = self.uld_centroids.device
        for name, value in values.items():
            setattr(self, BANK_BUFFER_PREFIX + name, value.to(device))
        self._pl_scalars = None if bank is None else dict(
            round=int(bank.round), iteration=int(bank.iteration))

    @property
    def pseudo_labels(self) -> Optional[PseudoLabelBank]:
        """PseudoLabelBank, optional: The pseudo-labels of the last
        clustering round (a view of the buffers), None before the first."""
        bank = PseudoLabelBank.from_buffers(
            dict(self.named_buffers(recurse=False)), BANK_BUFFER_PREFIX,
            self._pl_scalars)
        if bank is not None and self._pl_scalars is None:
            self._pl_scalars = dict(round=bank.round, iteration=bank.iteration)
        return bank

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
        bank = tuple(BANK_BUFFER_PREFIX + n
                     for n in PseudoLabelBank.empty_buffers())
        adopt_buffer_shapes(self, state_dict, prefix,
                            _CENTROID_BUFFERS + bank)
        self._pl_scalars = None  # read again from the loaded buffers
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

    def descriptor_map(self, inputs: Tensor) -> Tensor:
        """The descriptor volume F of a batch, ``(B, D, h, w)``."""
        return self.descriptor_head(self.extract_feat(inputs))

    def extract_keypoints(self, inputs: Tensor,
                          dense: bool = False,
                          min_keypoints: int = 0) -> Dict[str, Tensor]:
        """Detector + descriptor forward with NMS keypoints.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            dense (bool): The highest-scoring map cells above
                ``score_thr`` are the keypoints, without NMS (at most
                ``test_cfg.dense_max_keypoints``, default a quarter of the
                map and at most 256; at least ``min_keypoints``, even below
                ``score_thr``). Used by clustering rounds and, with
                ``test_cfg.candidates='dense'``, at test time; see
                docs/methods.md ("Candidates of a clustering round").
            min_keypoints (int): Keep at least this many NMS peaks (dense:
                cells) per image, the highest ones, even below
                ``score_thr``, so that a
                detector still learning a new round's targets cannot starve
                the next clustering round (used by :class:`ClusteringRounds`
                with K; 0 at inference).

        Returns:
            dict: ``keypoints`` (B, N, 2) in input pixels, ``scores`` (B, N),
            ``valid`` (B, N), ``descriptors`` (B, N, D), ``heatmap``
            (B, 1, h, w) probabilities and, with a VAE, ``codes`` (B, Dz)
            (the posterior means).
        """
        cfg = self.test_cfg
        logits, desc_map = self._forward(inputs)
        heat = logits.sigmoid()
        thr = cfg.get('score_thr', 0.15)
        border = cfg.get('border', 1)
        if dense:
            h, w = heat.shape[-2:]
            kpts, scores, valid = heatmap_nms(
                heat, kernel_size=1, score_thr=-1.0, border=border,
                max_keypoints=max(min_keypoints, cfg.get(
                    'dense_max_keypoints', min(256, h * w // 4))))
            # cells above the threshold, and at least the min_keypoints
            # highest of every image
            kpts, scores, valid = self._keep_at_least(
                heat, kpts, scores, valid, thr, min_keypoints, border)
        else:
            kpts, scores, valid = heatmap_nms(
                heat,
                kernel_size=cfg.get('nms_kernel', 5),
                score_thr=-1.0 if min_keypoints > 0 else thr,
                max_keypoints=cfg.get('max_keypoints', 50),
                border=border)
            if min_keypoints > 0:
                kpts, scores, valid = self._keep_at_least(
                    heat, kpts, scores, valid, thr, min_keypoints, border)
        if cfg.get('subpixel', True) and not dense:
            kpts = refine_subpixel(heat, kpts, valid)
        kpts = (kpts + 0.5) * self.stride - 0.5
        out = dict(
            keypoints=kpts,
            scores=scores,
            valid=valid,
            descriptors=sample_descriptors(desc_map, kpts, self.stride),
            heatmap=heat,
            desc_map=desc_map,
            dense=dense)
        if self.pose_vae is not None:
            out['codes'] = self.pose_vae.encode(heat)[0]
        return out

    @staticmethod
    def _keep_at_least(heat: Tensor, kpts: Tensor, scores: Tensor,
                       valid: Tensor, thr: float, n: int,
                       border: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Keypoints (NMS peaks or dense cells, sorted by score) above
        ``thr``, and at least ``n`` per image.

        The highest ones stay even below ``thr``; where a smooth map has
        fewer than ``n`` NMS peaks at all, its highest other cells are added.
        """
        rank = torch.arange(valid.shape[1], device=valid.device)
        valid = valid & ((scores > thr) | (rank < n)[None])
        need = (n - valid.sum(1)).clamp(min=0)
        if bool((need > 0).any()):
            ek, es, ev = heatmap_nms(heat, kernel_size=1, score_thr=-1.0,
                                     max_keypoints=2 * n, border=border)
            dup = ((ek[:, :, None] == kpts[:, None]).all(-1)
                   & valid[:, None]).any(-1)
            ev = ev & ~dup
            ev = ev & (ev.cumsum(1) <= need[:, None])
            kpts = torch.cat([kpts, ek], 1)
            scores = torch.cat([scores, es], 1)
            valid = torch.cat([valid, ev], 1)
        return kpts * valid[..., None], scores * valid, valid

    # ------------------------------------------------------------------ #
    # losses
    # ------------------------------------------------------------------ #
    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Losses of the current stage (``_loss_<stage>``).

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): Samples with ``sample_idx``
                in their metainfo (index into the pseudo-label bank).

        Returns:
            dict: Named losses.
        """
        return self.stage_loss(self.stage)(inputs, data_samples)

    def stage_loss(self, stage: str) -> Callable[[Tensor, SampleList], dict]:
        """The loss method of ``stage``.

        Args:
            stage (str): One of :data:`STAGE_NAMES`.

        Returns:
            callable: ``(inputs, data_samples) -> dict`` of named losses.
        """
        if stage not in STAGE_NAMES:
            raise ValueError(
                f'unknown stage {stage!r}, expected {STAGE_NAMES}')
        return getattr(self, f'_loss_{stage}')

    def _loss_duld(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """D-ULD self-training (Sec. 3.2): detector MSE on the pseudo-label
        heatmaps and the contrastive loss on the descriptors of the
        pseudo-labelled keypoints.

        With ``train_cfg.correspondence_weight`` w > 0, w times the
        bootstrapping descriptor loss (the correspondence between the batch
        and a warped copy, :class:`BootstrapLoss`) is added as
        ``loss_correspondence``: a backbone trained from scratch otherwise
        forgets, under pseudo-labels that merge look-alike parts (the two
        eyes), the within-image distinctions that bootstrapping taught it
        (docs/methods.md, "Keeping the correspondence").
        """
        losses = self._descriptor_terms(
            self._self_training(inputs, data_samples))
        w = self.train_cfg.get('correspondence_weight', 0.0)
        if w:
            boot = self._loss_bootstrap(inputs)
            losses['loss_correspondence'] = w * boot['loss_boot_desc']
        return losses

    def _loss_proxy(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Pose-guided proxy task (Sec. 3.3.1): detector MSE and the ELBO of
        the VAE reconstructing the pseudo ground-truth heatmap."""
        return self._elbo_terms(self._self_training(inputs, data_samples))

    def _loss_dldpp(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """D-ULD++ (Sec. 3.3.2): detector MSE and, by
        ``train_cfg.dldpp_objective``, Eq. 3 on the encoder's codes
        (``'latent'``), the whole ELBO (``'elbo'``) or D-ULD's descriptor
        loss (``'duld'``)."""
        objective = self.train_cfg.get('dldpp_objective', 'latent')
        if objective == 'duld':
            self._check_kmeans_labels()
        terms = dict(latent=self._latent_terms, elbo=self._elbo_terms,
                     duld=self._descriptor_terms)[objective]
        return terms(self._self_training(inputs, data_samples))

    def _self_training(self, inputs: Tensor,
                       data_samples: SampleList) -> SelfTrainingBatch:
        """What every self-training stage computes first.

        The batch's pseudo-labels (augmented with the images when
        ``train_cfg.augment``), the features, the detector output and the
        detector's MSE on the pseudo-label heatmaps.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): Samples with
                ``sample_idx`` in their metainfo.

        Returns:
            SelfTrainingBatch: ``losses`` holds ``loss_heatmap``.
        """
        bank = self.pseudo_labels
        if bank is None:
            raise RuntimeError(
                f'stage {self.stage!r} needs pseudo-labels, but no clustering '
                'round has run: train with '
                'train_cfg=dict(type="ULDTrainLoop")')
        idx = [ds.metainfo['sample_idx'] for ds in data_samples]
        pl = bank.lookup(idx, inputs.device)
        aug = augment_config(self.train_cfg.get('augment', True))
        if aug is not None:
            inputs, kpts, valid, _ = augment_with_labels(
                inputs, pl['keypoints'], pl['valid'], **aug)
            pl = dict(pl, keypoints=kpts, valid=valid)
            pl['labels'] = pl['labels'].masked_fill(~valid, -1)
        feats = self.extract_feat(inputs)
        logits = self.detector_head(feats)
        heat = logits.sigmoid()
        sigma = self.train_cfg.get('sigma', 1.0)
        target = render_gaussian_heatmap(pl['keypoints'], pl['valid'],
                                         heat.shape[-2:], self.stride, sigma)
        losses = dict(loss_heatmap=self.loss_heatmap(logits, target))
        return SelfTrainingBatch(pl, feats, logits, heat, target, losses)

    def _descriptor_terms(self, batch: SelfTrainingBatch) -> dict:
        """Add D-ULD's descriptor contrastive loss to ``batch.losses``."""
        pl, losses = batch.pseudo_labels, batch.losses
        desc_map = self.descriptor_head(batch.feats)
        desc = sample_descriptors(desc_map, pl['keypoints'], self.stride)
        # the loss selects the valid descriptors itself (one selection,
        # instead of two boolean indexings that each wait for the device)
        losses['loss_descriptor'] = self.loss_descriptor(
            desc.reshape(-1, desc.shape[-1]), pl['labels'].reshape(-1),
            valid=pl['valid'].reshape(-1))
        return losses

    def _elbo_terms(self, batch: SelfTrainingBatch) -> dict:
        """Add the ELBO of the proxy task (and of the "TSC w/ full VAE"
        ablation) to ``batch.losses``, with the gradient norm each loss
        sends into the detector (logged)."""
        losses, heat, logits = batch.losses, batch.heat, batch.logits
        vae_in = heat.detach() if self.train_cfg.get(
            'detach_vae_input', False) else heat
        out = self.pose_vae(vae_in)
        losses.update(
            self.loss_elbo(out['recon'], batch.target, out['mu'],
                           out['logvar']))
        if torch.is_grad_enabled() and logits.requires_grad:
            losses.update(self._detector_grad_norms(logits, losses))
        return losses

    def _latent_terms(self, batch: SelfTrainingBatch) -> dict:
        """Add the latent contrastive loss (Eq. 3) on the encoder's codes
        to ``batch.losses``; the VAE decoder is not used."""
        pl, losses = batch.pseudo_labels, batch.losses
        mu, _ = self.pose_vae.encode(batch.heat)
        losses['loss_latent'] = self.loss_latent(mu, pl['pose_labels'])
        return losses

    def _check_kmeans_labels(self) -> None:
        """A last stage trained like D-ULD ("+ PP") needs K-means labels.

        Raises:
            ValueError: The pseudo-labels come from two-stage clustering,
                which this objective does not use.
        """
        bank = self.pseudo_labels
        if bank is not None and bank.pose_labels.any():
            raise ValueError(
                'train_cfg.dldpp_objective="duld" trains the last stage on '
                'K-means pseudo-labels, but the bank holds two-stage '
                "clustering labels: give the dldpp stage pseudo_labels="
                "'kmeans' (not 'two_stage') in model.stages")

    @staticmethod
    def _detector_grad_norms(logits: Tensor, losses: dict) -> dict:
        """Norm of the gradient each loss sends into the detector output.

        Logged (not optimised) so that a loss that starves another is
        visible: ``gnorm_<loss>`` is ``||d loss / d H||`` for the detector
        logits H of the batch.
        """
        out = {}
        for name, value in losses.items():
            if not name.startswith('loss_') or not value.requires_grad:
                continue
            g, = torch.autograd.grad(
                value, logits, retain_graph=True, allow_unused=True)
            norm = g.norm() if g is not None else logits.new_zeros(())
            out['gnorm_' + name[len('loss_'):]] = norm.detach()
        return out

    def _loss_bootstrap(self, inputs: Tensor,
                        data_samples: Optional[SampleList] = None) -> dict:
        """SiLK-style bootstrapping between an image and a warped copy
        (needs no pseudo-labels)."""
        cfg = self.train_cfg
        pair = random_affine_pair(
            inputs,
            max_rotation=cfg.get('max_rotation', 30.0),
            flip_prob=cfg.get('flip_prob', 0.5),
            scale_range=cfg.get('boot_scale_range'),
            max_shift=cfg.get('boot_max_shift', 0.0))
        copies = pair.images
        photo = cfg.get('boot_photometric')
        if photo:
            copies = photometric_change(
                copies, **({} if photo is True else photo))
        both = torch.cat([inputs, copies])
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
        if self.uld_centroids.numel() and self.uld_pose_centroids.numel() \
                and 'codes' in out:
            pose = torch.cdist(out['codes'],
                               self.uld_pose_centroids).argmin(1)
        pose = pose.clamp(max=max(self.uld_centroids.shape[0] - 1, 0))
        if self.uld_centroids.numel() and self.decode_mode() == 'peaks':
            return self._peak_landmarks(out['desc_map'], pose)
        if self.uld_centroids.numel() == 0:
            # no clustering round yet: the K best keypoints, by score
            n = min(k, kpts.shape[1])
            idx = torch.full((bsz, k), -1, dtype=torch.long,
                             device=kpts.device)
            idx[:, :n] = torch.where(valid[:, :n],
                                     torch.arange(n, device=kpts.device), -1)
        else:
            idx = torch.empty((bsz, k), dtype=torch.long, device=kpts.device)
            for q in pose.unique():
                sel = pose == q
                idx[sel] = image_exemplars(desc[sel], self.uld_centroids[q],
                                           valid[sel])[0]
        res = gather_landmarks(
            idx, keypoints=kpts, scores=out['scores'], descriptors=desc)
        res['pose_labels'] = pose
        if out.get('dense') and self.uld_centroids.numel() and \
                out.get('desc_map') is not None:
            res['keypoints'] = self._refine_on_similarity(
                res['keypoints'], out['desc_map'],
                self.uld_centroids[pose].to(out['desc_map'].dtype))
        return res

    def decode_mode(self) -> str:
        """``test_cfg.decode``: ``'exemplar'`` (default, the paper: each
        keypoint candidate goes to its nearest centroid, the candidate
        nearest to a centroid is its landmark) or ``'peaks'`` (a landmark
        is the peak of its centroid's similarity over every map cell,
        :func:`similarity_peaks`; the clustering rounds decode the same
        way with ``train_cfg.clustering.decode='peaks'``)."""
        mode = self.test_cfg.get('decode', 'exemplar')
        if mode not in ('exemplar', 'peaks'):
            raise ValueError("test_cfg.decode must be 'exemplar' or 'peaks',"
                             f' got {mode!r}')
        return mode

    def _peak_landmarks(self, desc_map: Tensor,
                        pose: Tensor) -> Dict[str, Tensor]:
        """Landmarks as the peaks of the centroid similarity maps
        (``test_cfg.decode='peaks'``), with the centroids of each image's
        pose cluster.

        Returns:
            dict: as :meth:`assign_landmarks`; the score of a landmark is
            its peak similarity.
        """
        cents = self.uld_centroids[pose].to(desc_map.dtype)
        res = similarity_peaks(desc_map, cents, self.stride,
                               radius=self.stride,
                               border=self.test_cfg.get('border', 1),
                               with_descriptors=True)
        return dict(keypoints=res['keypoints'], scores=res['peak'],
                    visible=res['valid'].float(),
                    descriptors=res['descriptors'], pose_labels=pose)

    def _refine_on_similarity(self, kpts: Tensor, desc_map: Tensor,
                              centroids: Tensor) -> Tensor:
        """Landmark positions from each centroid's similarity map.

        Dense candidates sit at map-cell centres, and the exemplar cell is
        only the cell nearest the centroid: where self-training has made the
        descriptors of a whole part alike, that cell jumps around inside the
        part from image to image. By default a parabola fit of the
        similarity around the exemplar cell refines it (as
        :func:`refine_subpixel` does for heatmap peaks). With
        ``test_cfg.softargmax_temperature`` T the landmark is instead the
        soft-argmax of the cosine similarity to its centroid
        (``softmax(sim / T)``-weighted mean of the cell centres): steadier,
        but it averages look-alike parts (both eyes) into a point between
        them; docs/methods.md has the measurements.

        Args:
            kpts (Tensor): (B, K, 2) landmarks in input pixels.
            desc_map (Tensor): (B, D, h, w) descriptors.
            centroids (Tensor): (B, K, D) centroid of each landmark.

        Returns:
            Tensor: (B, K, 2) refined landmarks in input pixels.
        """
        b, k, _ = kpts.shape
        sim = torch.einsum('bdhw,bkd->bkhw', desc_map,
                           torch.nan_to_num(centroids))
        tau = self.test_cfg.get('softargmax_temperature')
        if tau:
            h, w = sim.shape[-2:]
            prob = (sim.flatten(2) / tau).softmax(-1)
            ys, xs = torch.meshgrid(
                torch.arange(h, dtype=sim.dtype, device=sim.device),
                torch.arange(w, dtype=sim.dtype, device=sim.device),
                indexing='ij')
            grid = torch.stack([xs.flatten(), ys.flatten()], -1)
            return (prob @ grid + 0.5) * self.stride - 0.5
        cells = (kpts + 0.5) / self.stride - 0.5
        ref = refine_subpixel(sim.reshape(b * k, 1, *sim.shape[-2:]),
                              cells.reshape(b * k, 1, 2).round())
        return (ref.reshape(b, k, 2) + 0.5) * self.stride - 0.5

    def dense_at_test(self) -> bool:
        """``test_cfg.candidates``: ``'dense'`` (default) takes landmark
        candidates the way clustering rounds do (the highest-scoring map
        cells, see :class:`ClusteringRounds`), ``'nms'`` the NMS peaks."""
        mode = self.test_cfg.get('candidates', 'dense')
        if mode not in ('dense', 'nms'):
            raise ValueError(f"test_cfg.candidates must be 'dense' or 'nms', "
                             f'got {mode!r}')
        return mode == 'dense'

    def min_keypoints_at_test(self) -> int:
        """``test_cfg.min_keypoints``: ``'k'`` (default) keeps the K highest
        peaks of every image even below ``score_thr``, so that every
        landmark gets a keypoint to be assigned to; 0 drops them."""
        n = self.test_cfg.get('min_keypoints', 'k')
        return self.num_landmarks if n == 'k' else int(n)

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
        out = self.extract_keypoints(
            inputs, dense=self.dense_at_test(),
            min_keypoints=self.min_keypoints_at_test())
        res = self.assign_landmarks(out)
        keys = ['pose_labels']
        if self.test_cfg.get('output_descriptors', True):
            keys.append('descriptors')
        preds = to_pred_instances(res, keys)
        return self.add_pred_to_datasample(preds, None, data_samples)

    add_pred_to_datasample = TopdownPoseEstimator.add_pred_to_datasample
