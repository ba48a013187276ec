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
    try:
        with open(ann_file) as f:
            data = json.load(f)
        anns = data.get('annotations', [])
        if not anns:
            raise ValueError(f'{ann_file} contains no annotations.')
        return len(anns[0]['keypoints']) // 3
    except json.JSONDecodeError as e:
        raise ValueError(f'annotation file {ann_file} is not valid JSON '
                         f'({e})') from None
    except (AttributeError, KeyError, TypeError) as e:
        raise ValueError(f'annotation file {ann_file} is not a COCO '
                         f'keypoint file ({type(e).__name__}: {e})') from None


def _unreadable_detail(path: str) -> str:
    """Why an image could not be read, in a few words."""
    from .transforms.safe_load_image import SafeLoadImage
    if not osp.isfile(path):
        return 'the file does not exist'
    if osp.getsize(path) == 0:
        return 'the file is empty'
    return SafeLoadImage.errors.get(path) or 'it cannot be decoded'


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
        max_unreadable (float): Largest share of the images that may be
            missing (checked when the dataset is built) or undecodable
            (counted while training) before the dataset stops with one
            error naming the folder and the count; fewer are skipped with
            one warning each. In test mode every ``'test'``-split image
            must be readable; ``'train'``-split images that cannot be
            decoded are skipped with one warning each, as in training.
            Defaults to 0.5.
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
                 max_unreadable: float = 0.5,
                 **kwargs):
        if not 0 <= max_unreadable <= 1:
            raise ValueError(
                f'max_unreadable must be in [0, 1], got {max_unreadable}')
        self.max_unreadable = max_unreadable
        self._unreadable = set()
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

    def load_data_list(self) -> List[dict]:
        """Load the annotations; name the file when it is malformed, and
        check that the images exist."""
        try:
            data_list = super().load_data_list()
        except json.JSONDecodeError as e:
            raise ValueError(f'annotation file {self.ann_file} is not valid '
                             f'JSON ({e})') from None
        except (AssertionError, AttributeError, KeyError, TypeError) as e:
            raise ValueError(
                f'annotation file {self.ann_file} is not a COCO keypoint '
                f'file ({type(e).__name__}: {e})') from None
        data_list = self._check_images(data_list)
        if self.test_mode:
            data_list = self._drop_unreadable_train(data_list)
        return data_list

    def _drop_unreadable_train(self, data_list: List[dict]) -> List[dict]:
        """In evaluation, skip the ``'train'``-split images that cannot be
        decoded, as training does (they only fit the regressors); a test
        image that cannot be read stays an error."""
        import cv2
        from mmengine.logging import print_log
        bad = set()
        for path in sorted({d['img_path'] for d in data_list
                            if d.get('uld_split') == 'train'}):
            try:
                ok = cv2.imread(path, cv2.IMREAD_UNCHANGED) is not None
            except cv2.error:
                ok = False
            if not ok:
                bad.add(path)
                print_log(f'skipping unreadable training image {path} '
                          f'({_unreadable_detail(path)}) in evaluation',
                          logger='current', level=30)
        return [d for d in data_list if d['img_path'] not in bad]

    def _image_folder(self, paths: Sequence[str]) -> str:
        folder = self.data_prefix.get('img') or self.data_root
        if not folder:
            folder = osp.commonpath([osp.abspath(p) for p in paths]) \
                if paths else '.'
        return folder

    def _check_images(self, data_list: List[dict]) -> List[dict]:
        """Stop when the images are missing; skip a few missing ones."""
        from mmengine.logging import print_log
        paths = sorted({d['img_path'] for d in data_list})
        missing = [p for p in paths if not osp.isfile(p)]
        if not missing:
            return data_list
        folder = self._image_folder(paths)
        what = (f'{len(missing)} of the {len(paths)} images listed in '
                f'{self.ann_file} are missing under {folder}')
        if len(missing) == len(paths):
            raise FileNotFoundError(
                f'{what} (all of them; e.g. {missing[0]}): check data_root '
                'and data_prefix')
        if self.test_mode:
            raise FileNotFoundError(
                f'{what} (e.g. {missing[0]}); evaluation needs every image')
        if len(missing) > self.max_unreadable * len(paths):
            raise FileNotFoundError(
                f'{what} (e.g. {missing[0]}), more than max_unreadable='
                f'{self.max_unreadable} of them')
        for p in missing[:20]:
            print_log(f'skipping missing image {p}', logger='current',
                      level=30)
        print_log(f'{what}; they are skipped', logger='current', level=30)
        gone = set(missing)
        return [d for d in data_list if d['img_path'] not in gone]

    def prepare_data(self, idx: int):
        """Run the pipeline; an unreadable image is an error in test mode
        and after ``max_unreadable`` of the images in training."""
        data = super().prepare_data(idx)
        if data is None:
            path = self.get_data_info(idx).get('img_path')
            if self.test_mode:
                raise ValueError(f'cannot read test image {path} '
                                 f'({_unreadable_detail(path)})')
            self._unreadable.add(path)
            n = len(self._unreadable)
            if n > self.max_unreadable * len(self):
                raise RuntimeError(
                    f'{n} of the {len(self)} images under '
                    f'{self._image_folder([path])} cannot be read (e.g. '
                    f'{path}: {_unreadable_detail(path)}), more than '
                    f'max_unreadable={self.max_unreadable} of them')
        return data

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
