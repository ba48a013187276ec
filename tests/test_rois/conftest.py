# Copyright (c) mmuld contributors. All rights reserved.
import os.path as osp

import pytest

# the face samples shipped with the repository
FACE_SAMPLES = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'data',
    'face_samples')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: slow test')


def rtmdet_tiny_config() -> str:
    """Path of the rtmdet-tiny config shipped with mmdet."""
    import mmdet
    return osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', 'rtmdet',
        'rtmdet_tiny_8xb32-300e_coco.py')


@pytest.fixture(scope='session')
def rtmdet_config():
    path = rtmdet_tiny_config()
    assert osp.isfile(path), f'mmdet config not found: {path}'
    return path


@pytest.fixture(scope='session')
def face_image_path():
    path = osp.join(FACE_SAMPLES, '300w', 'indoor_020.png')
    assert osp.isfile(path), f'face sample not found: {path}'
    return path
