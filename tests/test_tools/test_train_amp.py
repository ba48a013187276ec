# Copyright (c) mmuld contributors. All rights reserved.
"""tools/train.py --amp: bf16 autocast of the trainable parts."""
import argparse
import importlib.util
import os.path as osp

from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _merge(amp, optim_wrapper):
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(ROOT, 'tools', 'train.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = argparse.Namespace(
        launcher='none', work_dir='/tmp/x', config='c.py', amp=amp,
        resume=None, cfg_options=None)
    cfg = Config(dict(optim_wrapper=optim_wrapper))
    return mod.merge_args(cfg, args).optim_wrapper


def test_amp_is_bf16_unless_the_config_says_otherwise():
    adam = dict(optimizer=dict(type='Adam', lr=1e-4))
    ow = _merge(True, dict(adam))
    assert ow.type == 'AmpOptimWrapper' and ow.dtype == 'bfloat16'
    ow = _merge(True, dict(adam, dtype='float16'))
    assert ow.dtype == 'float16'
    ow = _merge(False, dict(adam))
    assert ow.get('type', 'OptimWrapper') == 'OptimWrapper'
    assert 'dtype' not in ow
