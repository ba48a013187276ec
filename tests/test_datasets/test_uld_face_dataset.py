# Copyright (c) mmuld contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest

from mmuld.datasets import (FACE_5PT_METAINFO, ULDFaceDataset,
                            ULDImageFolderDataset, map_keypoints)
from mmuld.evaluation.functional import interocular_distance
from mmuld.registry import DATASETS
from mmuld.utils import register_all_modules

ROOT = osp.abspath(
    osp.join(osp.dirname(__file__), '..', '..', 'data', 'face_samples'))
SOURCES = dict(
    **{'300w': 68, '300wlp': 68, 'aflw': 19, 'cofw': 29, 'wflw': 98,
       'lapa': 106})

PIPELINE = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=(64, 64)),
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'img_id', 'img_path', 'ori_shape', 'img_shape',
                   'input_size', 'input_center', 'input_scale', 'uld_split'))
]


@pytest.fixture(autouse=True, scope='module')
def _register():
    register_all_modules()


@pytest.mark.parametrize('src', sorted(SOURCES))
def test_face_samples_native_scheme(src):
    ds = ULDFaceDataset(
        ann_file=f'{src}/test_{src}.json',
        data_root=ROOT,
        data_prefix=dict(img=f'{src}/'),
        uld_split='test',
        pipeline=PIPELINE,
        test_mode=True)
    n_ann = len(json.load(open(osp.join(ROOT, src,
                                        f'test_{src}.json')))['annotations'])
    assert len(ds) == n_ann
    assert ds.metainfo['num_keypoints'] == SOURCES[src]
    out = ds[0]
    assert out['inputs'].shape == (3, 64, 64)
    sample = out['data_samples']
    assert sample.metainfo['uld_split'] == 'test'
    assert sample.gt_instances.keypoints.shape == (1, SOURCES[src], 2)


@pytest.mark.parametrize('src', sorted(SOURCES))
def test_face_samples_mapped_to_5pt(src):
    ds = DATASETS.build(
        dict(
            type='ULDFaceDataset',
            ann_file=f'{src}/test_{src}.json',
            data_root=ROOT,
            data_prefix=dict(img=f'{src}/'),
            landmark_subset='mafl5',
            uld_split='train',
            pipeline=PIPELINE))
    assert ds.metainfo['num_keypoints'] == 5
    assert ds.metainfo['dataset_name'] == 'uld_face_5pt'
    for i in range(len(ds)):
        kp = ds.get_data_info(i)['keypoints'][0]
        # geometry: eyes above nose above mouth; left is image-left
        assert kp[0, 0] < kp[1, 0] and kp[3, 0] < kp[4, 0]
        assert max(kp[0, 1], kp[1, 1]) < kp[2, 1] < min(kp[3, 1], kp[4, 1])
        # eye centres inside the face: nose near the eye-midpoint in x
        iod = interocular_distance(kp, 0, 1)
        assert abs(kp[2, 0] - kp[:2, 0].mean()) < iod
    out = ds[1]
    assert out['data_samples'].metainfo['uld_split'] == 'train'
    assert out['data_samples'].gt_instances.keypoints.shape == (1, 5, 2)


def test_combined_5pt_files():
    n = {}
    for split in ('train', 'test'):
        ds = ULDFaceDataset(
            ann_file=f'uld_5pt_{split}.json',
            data_root=ROOT,
            data_prefix=dict(img=''),
            pipeline=PIPELINE)
        n[split] = len(ds)
        assert ds.get_split_indices(split) == list(range(len(ds)))
        assert ds[0]['data_samples'].metainfo['uld_split'] == split
    assert n == dict(train=8, test=4)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match='uld_split'):
        ULDFaceDataset(ann_file='x.json', uld_split='val')
    with pytest.raises(FileNotFoundError):
        ULDFaceDataset(ann_file=str(tmp_path / 'missing.json'),
                       landmark_subset='mafl5')
    with pytest.raises(ValueError, match='landmark_subset'):
        ULDFaceDataset(ann_file='x.json', landmark_subset='foo')


def test_map_keypoints():
    kp = np.arange(12, dtype=np.float32).reshape(1, 6, 2)
    vis = np.array([[1, 1, 0, 1, 1, 1]], dtype=np.float32)
    pts, v = map_keypoints(kp, vis, [[0, 1], 2, 5])
    np.testing.assert_allclose(pts[0, 0], [1, 2])
    assert v.tolist() == [[1, 0, 1]]
    with pytest.raises(ValueError, match='invalid'):
        map_keypoints(kp, vis, [9])


def test_image_folder_dataset(tmp_path):
    from PIL import Image
    for i, size in enumerate([(40, 30), (50, 60)]):
        Image.new('RGB', size, (i * 50, 0, 0)).save(tmp_path / f'{i}.png')
    (tmp_path / 'notes.txt').write_text('x')
    ds = ULDImageFolderDataset(data_root=str(tmp_path), pipeline=PIPELINE)
    assert len(ds) == 2
    info = ds.get_data_info(1)
    np.testing.assert_allclose(info['bbox'], [[0, 0, 50, 60]])
    out = ds[0]
    assert out['inputs'].shape == (3, 64, 64)
    assert out['data_samples'].metainfo['uld_split'] == 'test'
    assert ds.metainfo['num_keypoints'] == len(
        FACE_5PT_METAINFO['keypoint_info'])
    with pytest.raises(FileNotFoundError):
        ULDImageFolderDataset(data_root=str(tmp_path / 'nope'))
