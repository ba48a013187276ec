# Copyright (c) mmuld contributors. All rights reserved.
"""Face landmark schemes and their mapping to the MAFL 5-point set.

MAFL order (CelebA ``list_landmarks_align_celeba.txt``): left eye centre,
right eye centre, nose tip, left mouth corner, right mouth corner, where
'left' is the image-left side (the subject's right). An entry of a mapping
is a GT index or a list of indices whose mean is used (eye centres from eye
contours). The indices were checked by plotting the labelled points of the
``data/face_samples`` images of each scheme.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

MappingEntry = Union[int, Sequence[int]]

FIVE_POINT_NAMES = ('left_eye', 'right_eye', 'nose', 'left_mouth',
                    'right_mouth')

#: scheme name -> (number of keypoints, mmpose dataset-info file name)
SCHEMES: Dict[str, Tuple[int, Optional[str]]] = {
    '300w': (68, '300w.py'),
    '300wlp': (68, '300wlp.py'),
    'ls3d': (68, '300w.py'),
    'aflw': (19, 'aflw.py'),
    'cofw': (29, 'cofw.py'),
    'wflw': (98, 'wflw.py'),
    'lapa': (106, 'lapa.py'),
    'mafl5': (5, None),
    'catheads': (9, None),
}

#: scheme -> 5-point mapping (MAFL order).
MAFL5_MAPPINGS: Dict[str, List[MappingEntry]] = {
    # iBUG 68: eye contours 36-41 / 42-47, nose tip 30, mouth corners 48/54.
    '68': [list(range(36, 42)), list(range(42, 48)), 30, 48, 54],
    # AFLW-19 (mmpose): eye centres 7 / 10, nose tip 13, mouth 15 / 17.
    '19': [7, 10, 13, 15, 17],
    # COFW-29: pupils 16 / 17, nose tip 20, mouth corners 22 / 23.
    '29': [16, 17, 20, 22, 23],
    # WFLW-98: pupils 96 / 97, nose tip 54, mouth corners 76 / 82.
    '98': [96, 97, 54, 76, 82],
    # LaPa-106: pupils 104 / 105, nose tip 54, mouth corners 84 / 90.
    '106': [104, 105, 54, 84, 90],
    '5': [0, 1, 2, 3, 4],
}


def _kpt_info(names: Sequence[str], swaps: Dict[str, str]) -> dict:
    return {
        i: dict(
            name=n, id=i, color=[255, 0, 0], type='', swap=swaps.get(n, ''))
        for i, n in enumerate(names)
    }


#: mmpose dataset-info of the MAFL 5-point set.
FACE_5PT_METAINFO = dict(
    dataset_name='uld_face_5pt',
    paper_info=dict(
        author='Zhang, Zhanpeng and Luo, Ping and Loy, Chen Change and '
        'Tang, Xiaoou',
        title='Learning Deep Representation for Face Alignment with '
        'Auxiliary Attributes',
        container='TPAMI',
        year='2016',
        homepage='https://mmlab.ie.cuhk.edu.hk/projects/TCDCN.html'),
    keypoint_info=_kpt_info(
        FIVE_POINT_NAMES,
        dict(
            left_eye='right_eye',
            right_eye='left_eye',
            left_mouth='right_mouth',
            right_mouth='left_mouth')),
    skeleton_info={},
    joint_weights=[1.] * 5,
    sigmas=[])

CAT_NAMES = ('left_eye', 'right_eye', 'mouth', 'left_ear_1', 'left_ear_2',
             'left_ear_3', 'right_ear_1', 'right_ear_2', 'right_ear_3')

#: mmpose dataset-info of the CAT dataset 9 points (file order of ``.cat``).
CATHEADS_METAINFO = dict(
    dataset_name='catheads',
    paper_info=dict(
        author='Zhang, Weiwei and Sun, Jian and Tang, Xiaoou',
        title='Cat Head Detection - How to Effectively Exploit Shape and '
        'Texture Features',
        container='ECCV',
        year='2008',
        homepage='https://www.kaggle.com/datasets/crawford/cat-dataset'),
    keypoint_info=_kpt_info(
        CAT_NAMES,
        dict(
            left_eye='right_eye',
            right_eye='left_eye',
            left_ear_1='right_ear_3',
            left_ear_2='right_ear_2',
            left_ear_3='right_ear_1',
            right_ear_1='left_ear_3',
            right_ear_2='left_ear_2',
            right_ear_3='left_ear_1')),
    skeleton_info={},
    joint_weights=[1.] * 9,
    sigmas=[])


def generic_metainfo(num_keypoints: int, name: str) -> dict:
    """mmpose dataset-info with ``kpt-i`` names and no flip pairs."""
    return dict(
        dataset_name=name,
        keypoint_info=_kpt_info([f'kpt-{i}' for i in range(num_keypoints)],
                                {}),
        skeleton_info={},
        joint_weights=[1.] * num_keypoints,
        sigmas=[])


def scheme_metainfo(scheme: str) -> dict:
    """Dataset-info of a scheme: mmpose's config file when it ships with the
    installed mmpose (``mmpose/.mim/configs/_base_/datasets``), else a
    generic one.

    Args:
        scheme (str): A key of :data:`SCHEMES`.

    Returns:
        dict: ``dict(from_file=...)`` or a full dataset-info dict.
    """
    if scheme not in SCHEMES:
        raise ValueError(f'Unknown landmark scheme {scheme!r}; known: '
                         f'{sorted(SCHEMES)}.')
    if scheme == 'mafl5':
        return FACE_5PT_METAINFO
    if scheme == 'catheads':
        return CATHEADS_METAINFO
    num, fname = SCHEMES[scheme]
    import os.path as osp

    import mmpose
    path = osp.join(
        osp.dirname(mmpose.__file__), '.mim', 'configs', '_base_',
        'datasets', fname)
    if osp.isfile(path):
        return dict(from_file=path)
    return generic_metainfo(num, scheme)


def get_mafl5_mapping(num_keypoints: int) -> List[MappingEntry]:
    """5-point mapping for a GT scheme with ``num_keypoints`` points."""
    key = str(num_keypoints)
    if key not in MAFL5_MAPPINGS:
        raise ValueError(
            f'No 5-point mapping for a {num_keypoints}-point scheme; known: '
            f'{sorted(MAFL5_MAPPINGS, key=int)}. Pass keypoint_mapping.')
    return MAFL5_MAPPINGS[key]


def map_keypoints(keypoints: np.ndarray, visible: np.ndarray,
                  mapping: Sequence[MappingEntry]
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Map (..., K, 2) keypoints to a new point set.

    Args:
        keypoints (np.ndarray): (..., K, 2).
        visible (np.ndarray): (..., K) visibility.
        mapping (Sequence): One entry per output point: an index or a list
            of indices to average.

    Returns:
        tuple[np.ndarray, np.ndarray]: (..., P, 2) points and (..., P)
        visibility (minimum over the averaged points).
    """
    keypoints = np.asarray(keypoints)
    visible = np.asarray(visible)
    k = keypoints.shape[-2]
    pts, vis = [], []
    for entry in mapping:
        idx = [entry] if isinstance(entry, (int, np.integer)) else list(entry)
        if not idx or any(not 0 <= int(i) < k for i in idx):
            raise ValueError(f'Mapping entry {entry} invalid for {k} '
                             'keypoints.')
        pts.append(keypoints[..., idx, :].mean(axis=-2))
        vis.append(visible[..., idx].min(axis=-1))
    return (np.stack(pts, axis=-2).astype(keypoints.dtype),
            np.stack(vis, axis=-1).astype(visible.dtype))
