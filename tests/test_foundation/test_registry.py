# Copyright (c) mmuld contributors. All rights reserved.
import subprocess
import sys

import pytest


def test_stack_imports():
    """The whole stack imports, including mmcv's compiled ops."""
    code = ('import mmuld, mmcv.ops, mmdet.apis, mmpose.apis, diffusers; '
            'from mmcv.ops import nms; print("ok")')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith('ok')


def test_registries_build_mmpose_and_mmuld_components():
    from mmuld.registry import KEYPOINT_CODECS, MODELS, TRANSFORMS
    from mmuld.utils import register_all_modules
    register_all_modules()
    codec = KEYPOINT_CODECS.build(
        dict(type='MSRAHeatmap', input_size=(64, 64), heatmap_size=(16, 16),
             sigma=2))
    assert type(codec).__name__ == 'MSRAHeatmap'
    assert codec.heatmap_size == (16, 16)
    head = MODELS.build(dict(type='ULDDetectorHead', in_channels=8))
    assert type(head).__module__.startswith('mmuld.')
    tr = TRANSFORMS.build(dict(type='TopdownAffine', input_size=(64, 64)))
    assert type(tr).__name__ == 'TopdownAffine'
    assert MODELS.scope == 'mmuld'


def test_version_check_message():
    import mmuld
    with pytest.raises(AssertionError, match='mmcv==1.7.0 is used'):
        mmuld._check('mmcv', '1.7.0', mmuld.mmcv_minimum_version,
                     mmuld.mmcv_maximum_version)
