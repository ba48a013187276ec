# Copyright (c) mmuld contributors. All rights reserved.
"""The library side of tools/analysis/equivariance_error.py."""
import pytest

from mmuld.apis import (checkpoint_equivariance, load_landmark_model,
                        select_split)


def test_select_split_keeps_the_leaves_of_one_split():
    train = dict(type='ULDFaceDataset', uld_split='train')
    test = dict(type='ULDFaceDataset', uld_split='test')
    plain = dict(type='ULDFaceDataset')
    cat = dict(type='ConcatDataset', datasets=[train, test, plain])
    assert select_split(cat, 'test') == dict(
        type='ConcatDataset', datasets=[test, plain])
    assert select_split(dict(type='ConcatDataset', datasets=[train, test]),
                        'train') == train
    with pytest.raises(ValueError, match="uld_split='val'"):
        select_split(dict(type='ConcatDataset', datasets=[train, test]),
                     'val')


def test_the_tool_is_a_thin_cli():
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    with open(osp.join(root, 'tools', 'analysis',
                       'equivariance_error.py')) as f:
        src = f.read()
    assert 'checkpoint_equivariance(' in src
    for name in ('def select_split', 'def load_model',
                 'def build_dataloader'):
        assert name not in src
    assert callable(load_landmark_model)
    assert callable(checkpoint_equivariance)
