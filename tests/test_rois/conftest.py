# Copyright (c) mmuld contributors. All rights reserved.
import os.path as osp

import pytest

FACE_SAMPLES = '/work/shared/data/face_samples'


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: slow test')


def rtmdet_tiny_config() -> str:
    """Path of the rtmdet-tiny config shipped with mmdet (may not exist)."""
    mmdet = pytest.importorskip('mmdet')
    return osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', 'rtmdet',
        'rtmdet_tiny_8xb32-300e_coco.py')


@pytest.fixture(scope='session')
def rtmdet_config():
    path = rtmdet_tiny_config()
    if not osp.isfile(path):
        pytest.skip(f'mmdet config not found: {path}')
    return path


@pytest.fixture(scope='session')
def face_image_path():
    path = osp.join(FACE_SAMPLES, '300w', 'indoor_020.png')
    if not osp.isfile(path):
        pytest.skip(f'face sample not found: {path}')
    return path
