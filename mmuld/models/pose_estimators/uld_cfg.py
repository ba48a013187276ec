# Copyright (c) mmuld contributors. All rights reserved.
"""Typed ``train_cfg`` / ``test_cfg`` of :class:`ULDEstimator`.

Every option and its default is written once, here. A config key that is
not a field is refused when the model is built, with the list of known
keys, so that a misspelt option cannot be silently ignored. Both classes
keep mmpose's dict reading (``cfg.get(key, default)``), which mmpose's
own code uses on ``test_cfg``.
"""
from dataclasses import dataclass, fields
from typing import Any, Optional, Tuple, Union

from .landmark_decoder import DECODE_MODES


class _CfgView:
    """``from_cfg`` with unknown-key checks and dict-style ``get``."""

    @classmethod
    def from_cfg(cls, cfg: Optional[Any], name: str):
        """Build from a config dict (None: all defaults).

        Args:
            cfg (dict, optional): The config.
            name (str): Its name in the model config, for errors.

        Returns:
            The typed config.
        """
        if isinstance(cfg, cls):
            return cfg
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(
                f'model.{name} has unknown keys {unknown}; known keys: '
                f'{sorted(known)}')
        return cls(**cfg)

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style read (mmpose reads ``test_cfg.get(...)``)."""
        return getattr(self, key, default)


@dataclass
class ULDTrainCfg(_CfgView):
    """Training options of :class:`ULDEstimator`.

    Attributes:
        sigma (float): Std of the pseudo-label Gaussians, map pixels.
        max_rotation (float): Bootstrapping rotation range, degrees (the
            paper's +-30).
        flip_prob (float): Bootstrapping flip probability (the paper's 0.5).
        boot_scale_range (tuple[float, float], optional): Scale range of the
            bootstrapping copy (None: no scaling, the paper).
        boot_max_shift (float): Largest shift of the copy, a fraction of the
            input side (0: the paper).
        boot_photometric (bool | dict, optional): Colour change of the copy
            (:func:`photometric_change`; True: its defaults).
        correspondence_weight (float): Weight of the bootstrapping
            descriptor loss kept in D-ULD self-training
            (``loss_correspondence``; 0: the paper).
        augment (bool | dict): Random affine + photometric augmentation of
            the self-training stages, pseudo-labels warped alike (True: the
            defaults of :func:`augment_with_labels`; a dict overrides them).
        detach_vae_input (bool): Stop the ELBO at the detector (False: the
            proxy task supervises the detector, Sec. 3.3.1).
    """

    sigma: float = 1.0
    max_rotation: float = 30.0
    flip_prob: float = 0.5
    boot_scale_range: Optional[Tuple[float, float]] = None
    boot_max_shift: float = 0.0
    boot_photometric: Union[bool, dict, None] = None
    correspondence_weight: float = 0.0
    augment: Union[bool, dict] = True
    detach_vae_input: bool = False

    def __post_init__(self):
        if not self.correspondence_weight >= 0:
            raise ValueError('train_cfg.correspondence_weight must be >= 0, '
                             f'got {self.correspondence_weight!r}')


@dataclass
class ULDTestCfg(_CfgView):
    """Keypoint extraction and landmark decoding of :class:`ULDEstimator`.

    Attributes:
        nms_kernel (int): Odd NMS window in map cells (5: +-2 cells, as
            Mallis et al.).
        score_thr (float): Keypoint confidence threshold (Mallis et al.'s
            0.15).
        max_keypoints (int): NMS keypoints kept per image.
        border (int): Map cells at the edge that hold no keypoint.
        subpixel (bool): Quadratic refinement of NMS peaks.
        candidates (str): Landmark candidates at test time: ``'dense'``
            (the highest-scoring map cells, as the clustering rounds) or
            ``'nms'`` (NMS peaks).
        dense_max_keypoints (int, optional): Dense (and corner) candidates
            per image; None: a quarter of the map, at most 256.
        min_keypoints (int | str): Candidates kept per image even below
            ``score_thr``; ``'k'`` means K, so that every landmark gets one.
        softargmax_temperature (float, optional): Decode exemplar landmarks
            of dense candidates by a soft-argmax of the centroid similarity
            (None: a parabola fit around the exemplar cell).
        decode (str): ``'exemplar'`` (the paper: the candidate nearest to a
            centroid) or ``'peaks'`` (the peak of the centroid similarity
            over every map cell).
        output_descriptors (bool): Add the landmarks' descriptors to the
            predictions.
        output_keypoint_indices (list[int], optional): mmpose's selection
            of output keypoints.
    """

    nms_kernel: int = 5
    score_thr: float = 0.15
    max_keypoints: int = 50
    border: int = 1
    subpixel: bool = True
    candidates: str = 'dense'
    dense_max_keypoints: Optional[int] = None
    min_keypoints: Union[int, str] = 'k'
    softargmax_temperature: Optional[float] = None
    decode: str = 'exemplar'
    output_descriptors: bool = True
    output_keypoint_indices: Optional[list] = None

    def __post_init__(self):
        if self.candidates not in ('dense', 'nms'):
            raise ValueError("test_cfg.candidates must be 'dense' or 'nms', "
                             f'got {self.candidates!r}')
        if self.decode not in DECODE_MODES:
            raise ValueError("test_cfg.decode must be 'exemplar' or 'peaks',"
                             f' got {self.decode!r}')

    def num_min_keypoints(self, num_landmarks: int) -> int:
        """``min_keypoints`` as a number (``'k'``: K)."""
        if self.min_keypoints == 'k':
            return num_landmarks
        return int(self.min_keypoints)
