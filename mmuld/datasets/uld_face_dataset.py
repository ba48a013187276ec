# Copyright (c) mmuld contributors. All rights reserved.
"""COCO-style face dataset for unsupervised landmark discovery."""
import json
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmpose.datasets.datasets.base import BaseCocoStyleDataset

from mmuld.registry import DATASETS
from .face_schemes import (SCHEMES, get_mafl5_mapping, generic_metainfo,
                           map_keypoints, scheme_metainfo, FACE_5PT_METAINFO)

ULD_SPLITS = ('train', 'test')


def _peek_num_keypoints(ann_file: str) -> int:
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'Annotation file not found: {ann_file}')
    with open(ann_file) as f:
        data = json.load(f)
    anns = data.get('annotations', [])
    if not anns:
        raise ValueError(f'{ann_file} contains no annotations.')
    return len(anns[0]['keypoints']) // 3


@DATASETS.register_module()
class ULDFaceDataset(BaseCocoStyleDataset):
    """Any MMPose COCO-style face json (300W, AFLW, COFW, WFLW, LaPa, ...).

    Each data info gets ``uld_split`` (``'train'``: fits the evaluation
    regressors, ``'test'``: evaluated), to be packed as metainfo with
    ``PackPoseInputs(meta_keys=(..., 'uld_split'))``. A per-image split can
    also come from an ``uld_split`` field of the json image or annotation
    records, which wins over the argument.

    Args:
        ann_file (str): Annotation file (relative to ``data_root``).
        uld_split (str): Default split of all samples.
        scheme (str, optional): GT scheme (key of
            :data:`mmuld.datasets.face_schemes.SCHEMES`); None = infer the
            metainfo from the number of keypoints in ``ann_file``.
        landmark_subset (str, optional): ``'mafl5'`` converts the GT to the
            MAFL 5-point set (left eye centre, right eye centre, nose tip,
            left / right mouth corner) with the scheme's known mapping.
        keypoint_mapping (Sequence, optional): Explicit mapping (one index or
            index list per output point); overrides ``landmark_subset``'s
            built-in mapping.
        **kwargs: :class:`mmpose.datasets.BaseCocoStyleDataset` arguments
            (``data_root``, ``data_prefix``, ``pipeline``, ``test_mode``,
            ``metainfo``, ...). ``data_mode`` is always ``'topdown'``.
    """

    def __init__(self,
                 ann_file: str = '',
                 uld_split: str = 'train',
                 scheme: Optional[str] = None,
                 landmark_subset: Optional[str] = None,
                 keypoint_mapping: Optional[Sequence[Union[int, Sequence[
                     int]]]] = None,
                 metainfo: Optional[dict] = None,
                 data_root: Optional[str] = None,
                 **kwargs):
        if uld_split not in ULD_SPLITS:
            raise ValueError(f"uld_split must be 'train' or 'test', got "
                             f'{uld_split!r}.')
        if landmark_subset not in (None, 'mafl5'):
            raise ValueError("landmark_subset must be None or 'mafl5', got "
                             f'{landmark_subset!r}.')
        if scheme is not None and scheme not in SCHEMES:
            raise ValueError(f'Unknown scheme {scheme!r}; known: '
                             f'{sorted(SCHEMES)}.')
        if kwargs.pop('data_mode', 'topdown') != 'topdown':
            raise ValueError('ULDFaceDataset only supports topdown mode.')
        self.uld_split = uld_split
        self.scheme = scheme
        self.landmark_subset = landmark_subset
        full_ann = ann_file
        if data_root is not None and ann_file and not osp.isabs(ann_file):
            full_ann = osp.join(data_root, ann_file)
        lazy = kwargs.get('lazy_init', False)
        self._mapping = None
        if keypoint_mapping is not None or landmark_subset is not None:
            self._mapping = (
                list(keypoint_mapping) if keypoint_mapping is not None else
                get_mafl5_mapping(
                    SCHEMES[scheme][0]
                    if scheme else _peek_num_keypoints(full_ann)))
        if metainfo is None:
            if self._mapping is not None:
                metainfo = (FACE_5PT_METAINFO if len(self._mapping) == 5 else
                            generic_metainfo(len(self._mapping), 'uld_custom'))
            elif self.METAINFO:
                metainfo = None  # class default
            elif scheme is not None:
                metainfo = scheme_metainfo(scheme)
            elif not lazy or osp.isfile(full_ann):
                metainfo = generic_metainfo(
                    _peek_num_keypoints(full_ann), 'uld_face')
        super().__init__(
            ann_file=ann_file,
            data_mode='topdown',
            metainfo=metainfo,
            data_root=data_root,
            **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> Optional[dict]:
        """Parse one annotation, map the GT and add ``uld_split``."""
        data_info = super().parse_data_info(raw_data_info)
        if data_info is None:
            return None
        ann = raw_data_info['raw_ann_info']
        img = raw_data_info['raw_img_info']
        split = ann.get('uld_split', img.get('uld_split', self.uld_split))
        if split not in ULD_SPLITS:
            raise ValueError(f'Invalid uld_split {split!r} in {self.ann_file}'
                             f' (image {img.get("file_name")}).')
        data_info['uld_split'] = split
        if 'yaw' in ann:
            data_info['yaw'] = float(ann['yaw'])
        if self._mapping is not None:
            kpts, vis = map_keypoints(data_info['keypoints'],
                                      data_info['keypoints_visible'],
                                      self._mapping)
            data_info['keypoints'] = kpts
            data_info['keypoints_visible'] = vis
            data_info['num_keypoints'] = int(np.count_nonzero(vis))
        num = self._metainfo.get('num_keypoints')
        if num is not None and data_info['keypoints'].shape[1] != num:
            raise ValueError(
                f'{self.ann_file}: annotation {ann.get("id")} has '
                f'{data_info["keypoints"].shape[1]} keypoints but the '
                f'metainfo {self._metainfo.get("dataset_name")} has {num}.')
        return data_info

    def get_split_indices(self, split: str) -> List[int]:
        """Indices of the samples of one ``uld_split``."""
        return [
            i for i in range(len(self))
            if self.get_data_info(i)['uld_split'] == split
        ]
