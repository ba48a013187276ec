# Copyright (c) mmuld contributors. All rights reserved.
"""ZeroShot landmark discovery baseline (paper Sec. 3.1)."""
import zlib
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmpose.models.pose_estimators.base import BasePoseEstimator
from mmpose.models.pose_estimators.topdown import TopdownPoseEstimator
from mmpose.utils.typing import (ConfigType, OptConfigType, OptMultiConfig,
                                 SampleList)
from torch import Tensor

from mmuld.clustering import KMeansResult, kmeans
from mmuld.registry import MODELS
from ..backbones.hyperfeatures_loader import load_hyperfeatures_aggregator
from ..utils.border import in_frame, valid_input_box
from ..utils.coords import (ArrayLike, as_float_tensor, image_to_input_coords,
                            input_to_image_coords, roi_to_input)
from ..utils.interest_points import corner_candidates, window_pixels
from ..utils.keypoint_ops import sample_descriptors
from .landmark_decoder import DECODE_MODES, LandmarkDecoder
from .utils import adopt_buffer_shapes, to_pred_instances

#: How :meth:`ZeroShotEstimator.sample_descriptors_in_roi` picks pixels.
SAMPLE_KINDS = ('random', 'corners')

# the coordinate helpers live in mmuld.models.utils.coords; re-exported
# here so existing imports keep working
__all__ = [
    'ZeroShotEstimator', 'image_to_input_coords', 'input_to_image_coords',
    'roi_to_input'
]


@MODELS.register_module()
class ZeroShotEstimator(BasePoseEstimator):
    """ZeroShot baseline: diffusion features, K-means, exemplar assignment.

    ``F_ag = Psi_b(x)`` comes from the backbone alone (no head, no
    training). For every image, ``samples_per_image`` pixels are sampled
    uniformly inside the RoI (the sample's ``gt_instances.bboxes``, which
    :class:`LoadRoIs` can replace with detector boxes), or with
    ``samples='corners'`` taken at the RoI's strongest Shi-Tomasi corners,
    and their L2-normalised ``F_ag`` descriptors are extracted. On the
    training set, the descriptors are clustered with K-means into K centroids
    (:meth:`fit`, run by :class:`ZeroShotFitHook`). At test time, with
    ``decode='exemplar'`` (the paper), every sampled pixel gets the label
    of its nearest centroid and, per cluster, the pixel nearest to the
    centroid is the landmark (exemplar assignment); clusters without any
    pixel are reported with ``keypoints_visible = 0``. With
    ``decode='peaks'`` a landmark is instead the peak of its centroid's
    cosine similarity over the map cells inside the RoI, refined by a
    parabola fit (as ``ULDEstimator`` decodes with ``decode='peaks'``).

    The centroids are the buffer ``zs_centroids`` (K, D), so a checkpoint
    of this model holds everything needed for inference.

    Args:
        backbone (dict): Backbone config (``StableDiffusionBackbone``).
        num_landmarks (int): K, landmarks to discover. Defaults to 10.
        samples_per_image (int): Pixels sampled inside the RoI of each
            image (with ``samples='corners'``: at most this many corners).
            Defaults to 200.
        seed (int): Seed of the pixel sampling; the generator of each
            image is seeded with ``seed`` and the image's ``img_path`` /
            ``id``, so samples do not depend on the batch composition.
        decode (str): ``'exemplar'`` (the paper) or ``'peaks'``; see above.
            Defaults to ``'exemplar'``.
        samples (str): ``'random'`` (the paper: uniform pixels in the RoI)
            or ``'corners'`` (the ``samples_per_image`` strongest corners of
            the RoI, :func:`corner_candidates`, one map cell from the edge
            of the part of the input that shows the image). Defaults to
            ``'random'``.
        corner_window (float): Structure-tensor window of ``'corners'``,
            a fraction of the input side. Defaults to 0.08.
        corner_spacing (float): Least distance between two corners, a
            fraction of the input side. Defaults to 0.045.
        aggregator_ckpt (str, optional): A trained Diffusion Hyperfeatures
            aggregation network (the public release's checkpoint) loaded
            into the backbone's aggregator
            (:func:`load_hyperfeatures_aggregator`). None: the aggregator
            keeps its initialisation (or the weights of ``load_from``).
        test_cfg (dict, optional): ``output_descriptors`` (bool, default
            True): also return the landmarks' descriptors.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
        metainfo (dict, optional): Dataset meta information.
    """

    @property
    def samples_points(self) -> bool:
        """Whether landmarks are picked among the sampled pixels (exemplar
        decoding, random or corner samples), so that a caller comparing
        two views passes the same pixels to :meth:`input_landmarks`."""
        return self.decode == 'exemplar'

    def __init__(self,
                 backbone: ConfigType,
                 num_landmarks: int = 10,
                 samples_per_image: int = 200,
                 seed: int = 0,
                 decode: str = 'exemplar',
                 samples: str = 'random',
                 corner_window: float = 0.08,
                 corner_spacing: float = 0.045,
                 aggregator_ckpt: Optional[str] = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 metainfo: Optional[dict] = None):
        if int(num_landmarks) < 1:
            raise ValueError(
                f'num_landmarks must be >= 1, got {num_landmarks}')
        if int(samples_per_image) < 1:
            raise ValueError('samples_per_image must be >= 1, got '
                             f'{samples_per_image}')
        if decode not in DECODE_MODES:
            raise ValueError(f'decode must be one of {DECODE_MODES}, got '
                             f'{decode!r}')
        if samples not in SAMPLE_KINDS:
            raise ValueError(f'samples must be one of {SAMPLE_KINDS}, got '
                             f'{samples!r}')
        # BasePoseEstimator.__init__ requires a head config (mmpose 1.3's
        # check_and_update_config fails on head=None): set up the same
        # state without it.
        BaseModel.__init__(
            self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.metainfo = self._load_metainfo(metainfo)
        self.train_cfg = {}
        self.test_cfg = dict(test_cfg) if test_cfg else {}
        self.backbone = MODELS.build(backbone)
        self.aggregator_ckpt = aggregator_ckpt
        if aggregator_ckpt:
            load_hyperfeatures_aggregator(self.backbone.aggregator,
                                          aggregator_ckpt)
            print_log(
                'ZeroShotEstimator: aggregator loaded from the Diffusion '
                f'Hyperfeatures checkpoint {aggregator_ckpt}',
                logger='current')
        self._register_load_state_dict_pre_hook(self._load_state_dict_pre_hook)
        self.num_landmarks = int(num_landmarks)
        self.samples_per_image = int(samples_per_image)
        self.seed = int(seed)
        self.decode = decode
        self.samples = samples
        self.corner_window = float(corner_window)
        self.corner_spacing = float(corner_spacing)
        #: number of samples whose RoI was empty / degenerate (whole input
        #: used instead)
        self.num_roi_fallbacks = 0
        self.register_buffer('zs_centroids', torch.zeros(0, 0))

    # ------------------------------------------------------------------ #
    # state
    # ------------------------------------------------------------------ #
    @property
    def stride(self) -> float:
        """Stride of ``F_ag`` with respect to the input."""
        return float(self.backbone.out_stride)

    @property
    def is_fitted(self) -> bool:
        """Whether the K-means centroids are available."""
        return self.zs_centroids.numel() > 0

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(
                'ZeroShotEstimator has no centroids: run the ZeroShotFitHook '
                '(custom_hooks=[dict(type="ZeroShotFitHook", ...)]), call '
                '`model.fit(descriptors)` / `model.set_centroids(c)` or load '
                'a checkpoint that holds `zs_centroids`.')

    def set_centroids(self, centroids: ArrayLike) -> None:
        """Store the K-means centroids used at inference.

        Args:
            centroids (Tensor | ndarray): (K, D) centroids, K =
                ``num_landmarks``.
        """
        c = as_float_tensor(centroids)
        if c.dim() != 2 or c.shape[0] != self.num_landmarks:
            raise ValueError(
                f'centroids must have shape ({self.num_landmarks}, D), got '
                f'{tuple(c.shape)}')
        self.zs_centroids = c.detach().to(self.zs_centroids.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        adopt_buffer_shapes(self, state_dict, prefix, ('zs_centroids', ))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ #
    # RoI sampling
    # ------------------------------------------------------------------ #
    def _sample_key(self, data_sample, index: int) -> int:
        meta = data_sample.metainfo
        key = f'{meta.get("img_path", "")}|{meta.get("id", "")}'
        if key == '|':
            key = f'#{meta.get("sample_idx", index)}'
        return (self.seed * 1000003 + zlib.crc32(key.encode())) % (2**63 - 1)

    def roi_in_input(self, data_sample, input_hw: Tuple[int, int]) -> Tensor:
        """RoI of one sample in input pixels, clipped to the input.

        Args:
            data_sample (PoseDataSample): Sample with ``gt_instances.bboxes``
                (image ``x1, y1, x2, y2``) and ``input_center`` /
                ``input_scale`` / ``input_size`` in its metainfo.
            input_hw (tuple[int, int]): Height and width of the input.

        Returns:
            Tensor: (4,) ``x1, y1, x2, y2`` in input pixels; the whole input
            (counted in :attr:`num_roi_fallbacks`, warning once) when the RoI
            is missing, not finite or (after clipping) degenerate.
        """
        h, w = input_hw
        whole = torch.tensor([0.0, 0.0, w - 1.0, h - 1.0])
        meta = data_sample.metainfo
        reason = None
        gt = data_sample.get('gt_instances', None)
        bboxes = None if gt is None else gt.get('bboxes', None)
        if bboxes is None or len(bboxes) == 0:
            reason = 'no gt_instances.bboxes'
        elif not all(
                k in meta
                for k in ('input_center', 'input_scale', 'input_size')):
            raise ValueError(
                'ZeroShotEstimator needs input_center, input_scale and '
                'input_size in the sample metainfo (PackPoseInputs meta_keys)')
        else:
            roi = roi_to_input(
                as_float_tensor(bboxes)[0], meta['input_center'],
                meta['input_scale'], meta['input_size'])
            if not torch.isfinite(roi).all():
                reason = 'non-finite RoI'
            else:
                roi = torch.stack([
                    roi[0].clamp(0, w - 1), roi[1].clamp(0, h - 1),
                    roi[2].clamp(0, w - 1), roi[3].clamp(0, h - 1)
                ])
                if roi[2] - roi[0] < 1 or roi[3] - roi[1] < 1:
                    reason = 'empty RoI inside the input crop'
                else:
                    return roi
        if self.num_roi_fallbacks == 0:
            print_log(
                f'ZeroShotEstimator: {reason} for {meta.get("img_path")}; '
                'sampling the whole input instead (further cases are only '
                'counted in `num_roi_fallbacks`)',
                logger='current',
                level=30)
        self.num_roi_fallbacks += 1
        return whole

    @torch.no_grad()
    def sample_descriptors_in_roi(self, inputs: Tensor,
                                  data_samples: SampleList
                                  ) -> Tuple[Tensor, Tensor, Tensor]:
        """Sample random pixels inside each RoI and their descriptors.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): Samples with
                ``gt_instances.bboxes`` and the input meta information.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``points`` (B, N, 2) in input
            pixels, ``descriptors`` (B, N, D) L2-normalised ``F_ag``
            descriptors and ``valid`` (B, N) bool (degenerate RoIs fall
            back to the whole input; random samples are all valid, corner
            rows beyond an RoI's corners are not).
        """
        if inputs.dim() != 4:
            raise ValueError(
                f'inputs must be (B, 3, H, W), got {tuple(inputs.shape)}')
        if len(data_samples) != inputs.shape[0]:
            raise ValueError(f'{len(data_samples)} data samples for a batch '
                             f'of {inputs.shape[0]} images')
        hw = tuple(inputs.shape[-2:])
        n = self.samples_per_image
        rois = [self.roi_in_input(ds, hw) for ds in data_samples]
        if self.samples == 'corners':
            points, valid = self.corner_points(inputs, data_samples, rois)
        else:
            points = []
            for i, (ds, roi) in enumerate(zip(data_samples, rois)):
                gen = torch.Generator().manual_seed(self._sample_key(ds, i))
                u = torch.rand(n, 2, generator=gen)
                points.append(roi[:2] + u * (roi[2:] - roi[:2]))
            points = torch.stack(points).to(inputs.device)
            valid = torch.ones(
                points.shape[:2], dtype=torch.bool, device=inputs.device)
        feat = self.extract_feat(inputs)[-1]
        desc = sample_descriptors(
            feat.float(), points, self.stride, normalize=True)
        return points, desc, valid

    def corner_points(self, inputs: Tensor, data_samples: SampleList,
                      rois: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """``samples='corners'``: the strongest corners of every RoI.

        Args:
            inputs (Tensor): (B, 3, S, S) inputs.
            data_samples (list[PoseDataSample]): Their samples.
            rois (list[Tensor]): (4,) RoI of each, input pixels.

        Returns:
            tuple[Tensor, Tensor]: ``points`` (B, N, 2) and ``valid`` (B, N)
            (False for the rows of an RoI with fewer corners).
        """
        side = float(max(inputs.shape[-2:]))
        boxes = []
        for ds, roi in zip(data_samples, rois):
            shown = valid_input_box(ds.metainfo)
            boxes.append(np.array([
                max(shown[0], float(roi[0]) - 0.5),
                max(shown[1], float(roi[1]) - 0.5),
                min(shown[2], float(roi[2]) + 0.5),
                min(shown[3], float(roi[3]) + 0.5)
            ]))
        return corner_candidates(
            inputs, self.samples_per_image,
            window=window_pixels(self.corner_window, side),
            spacing=self.corner_spacing * side, boxes=boxes,
            margin=self.stride)

    # ------------------------------------------------------------------ #
    # fitting
    # ------------------------------------------------------------------ #
    def fit(self, descriptors: ArrayLike, **kmeans_kwargs) -> KMeansResult:
        """Cluster training descriptors into K centroids and keep them.

        Args:
            descriptors (Tensor | ndarray): (P, D) RoI descriptors of the
                training set (from :meth:`sample_descriptors_in_roi`).
            **kmeans_kwargs: Arguments of :func:`mmuld.clustering.kmeans`
                (``seed`` defaults to the model's seed).

        Returns:
            KMeansResult: The clustering result.
        """
        kmeans_kwargs.setdefault('seed', self.seed)
        res = kmeans(descriptors, self.num_landmarks, **kmeans_kwargs)
        self.set_centroids(res.centroids)
        return res

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """ZeroShot is training-free: always raises.

        Raises:
            NotImplementedError: Use :meth:`fit` or the ``ZeroShotFitHook``.
        """
        raise NotImplementedError(
            'ZeroShotEstimator has no training: its centroids come from '
            'K-means on training-set descriptors. Run tools/test.py with a '
            'ZeroShotFitHook in `custom_hooks` (see configs/zeroshot_*.py) '
            'or call `model.fit(descriptors)`.')

    def _forward(self, inputs: Tensor, data_samples=None) -> Tuple[Tensor]:
        """Network forward: the aggregated feature map ``F_ag``."""
        return self.extract_feat(inputs)

    # ------------------------------------------------------------------ #
    # prediction
    # ------------------------------------------------------------------ #
    def assign_landmarks(self,
                         points: Tensor,
                         descriptors: Tensor,
                         valid: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Nearest-centroid labels and per-cluster exemplars (the exemplar
        decoding of :class:`LandmarkDecoder`, shared with D-ULD).

        Args:
            points (Tensor): (B, N, 2) sampled points.
            descriptors (Tensor): (B, N, D) their descriptors.
            valid (Tensor, optional): (B, N) bool; invalid points are
                ignored.

        Returns:
            dict: ``keypoints`` (B, K, 2) (zeros where not visible),
            ``scores`` (B, K) ``exp(-d^2)`` of the exemplar's squared
            distance to its centroid (0 where not visible), ``visible``
            (B, K) in {0, 1} and ``descriptors`` (B, K, D).
        """
        self._check_fitted()
        res = LandmarkDecoder(self.stride)(
            self.zs_centroids[None], points, descriptors, valid)
        del res['pose_labels']
        return res

    def input_landmarks(self, inputs: Tensor, data_samples: SampleList,
                        points: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """K landmarks per image in input pixels.

        Args:
            inputs (Tensor): (B, 3, S, S) preprocessed inputs.
            data_samples (list[PoseDataSample]): The batch's samples (their
                RoIs).
            points (Tensor, optional): (B, N, 2) input pixels to decode
                from instead of a fresh RoI sample (e.g. the sample of the
                untransformed input moved by a known transform); points
                outside the input are dropped. Unused with
                ``decode='peaks'``, which samples no pixels.

        Returns:
            dict: as :meth:`assign_landmarks`, plus the ``points`` sampled
            (with ``decode='peaks'``: the landmarks).
        """
        self._check_fitted()
        if self.decode == 'peaks':
            return self.peak_landmarks(inputs, data_samples)
        if points is None:
            points, desc, valid = self.sample_descriptors_in_roi(
                inputs, data_samples)
        else:
            valid = in_frame(points, inputs.shape[-2:])
            feat = self.extract_feat(inputs)[-1]
            desc = sample_descriptors(
                feat.float(), points, self.stride, normalize=True)
        return dict(self.assign_landmarks(points, desc, valid), points=points)

    def roi_cells(self, data_samples: SampleList, input_hw: Tuple[int, int],
                  map_hw: Tuple[int, int]) -> Tensor:
        """Map cells whose centres lie inside each sample's RoI.

        Args:
            data_samples (list[PoseDataSample]): The batch's samples.
            input_hw (tuple[int, int]): Input height and width.
            map_hw (tuple[int, int]): Feature map height and width.

        Returns:
            Tensor: (B, h, w) bool.
        """
        h, w = map_hw
        ys = (torch.arange(h, dtype=torch.float32) + 0.5) * self.stride - 0.5
        xs = (torch.arange(w, dtype=torch.float32) + 0.5) * self.stride - 0.5
        masks = []
        for i, ds in enumerate(data_samples):
            x1, y1, x2, y2 = self.roi_in_input(ds, input_hw).tolist()
            masks.append(((ys >= y1) & (ys <= y2))[:, None]
                         & ((xs >= x1) & (xs <= x2))[None, :])
        return torch.stack(masks)

    def peak_landmarks(self, inputs: Tensor,
                       data_samples: SampleList) -> Dict[str, Tensor]:
        """``decode='peaks'``: each centroid's similarity peak in the RoI.

        Args:
            inputs (Tensor): (B, 3, S, S) preprocessed inputs.
            data_samples (list[PoseDataSample]): The batch's samples (their
                RoIs; an RoI that holds no cell centre leaves the whole map).

        Returns:
            dict: as :meth:`assign_landmarks` (a landmark's score is its
            peak cosine similarity), plus ``points``: the landmarks.
        """
        feat = torch.nn.functional.normalize(
            self.extract_feat(inputs)[-1].float(), dim=1)
        mask = self.roi_cells(data_samples, tuple(inputs.shape[-2:]),
                              tuple(feat.shape[-2:])).to(feat.device)
        centroids = self.zs_centroids.to(feat).expand(len(feat), -1, -1)
        res = LandmarkDecoder(self.stride, 'peaks', border=1).peaks(
            feat, centroids, None, mask)
        del res['pose_labels']
        return dict(res, points=res['keypoints'])

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: SampleList) -> SampleList:
        """Discover K landmarks per image.

        Args:
            inputs (Tensor): (B, 3, S, S) images in [-1, 1].
            data_samples (list[PoseDataSample]): Samples with
                ``gt_instances.bboxes`` (the RoI), ``input_center``,
                ``input_scale`` and ``input_size`` in their metainfo.

        Returns:
            list[PoseDataSample]: ``pred_instances`` with ``keypoints``
            (1, K, 2) in image coordinates, ``keypoint_scores`` (1, K),
            ``keypoints_visible`` (1, K) (0: no exemplar for that cluster)
            and, when ``test_cfg.output_descriptors``, ``descriptors``
            (1, K, D).
        """
        res = self.input_landmarks(inputs, data_samples)
        keys = ['descriptors'] if self.test_cfg.get('output_descriptors',
                                                    True) else []
        preds = to_pred_instances(res, keys)
        return self.add_pred_to_datasample(preds, None, data_samples)

    add_pred_to_datasample = TopdownPoseEstimator.add_pred_to_datasample
