# Copyright (c) mmuld contributors. All rights reserved.
"""Every shipped config parses and names only registered components."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmuld.registry import HOOKS, LOOPS, METRICS, MODELS, TRANSFORMS
from mmuld.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')))


def _types(node, key='type'):
    if isinstance(node, dict):
        if key in node and isinstance(node[key], str):
            yield node
        for v in node.values():
            yield from _types(v, key)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _types(v, key)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses_and_components_exist(path):
    register_all_modules()
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmuld'
    assert MODELS.get(cfg.model.type) is not None
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    assert evaluators and all(isinstance(e, dict) for e in evaluators)
    assert 'RegressionNMEMetric' in [e['type'] for e in evaluators]
    for e in evaluators:
        assert METRICS.get(e['type']) is not None, e['type']
    for h in cfg.get('custom_hooks', []):
        assert HOOKS.get(h['type']) is not None, h['type']
    for t in _types(cfg.test_dataloader.dataset):
        if 'pipeline' in t:
            for step in t['pipeline']:
                assert TRANSFORMS.get(step['type']) is not None
    if (cfg.get('train_cfg') or {}).get('type') == 'ULDTrainLoop':
        # the stage table is the model's, read by the loop; the loop takes
        # its length from it and the clustering has no list of its own
        stages = cfg.model.stages
        assert LOOPS.get('ULDTrainLoop') is not None
        assert 'max_iters' not in cfg.train_cfg
        assert not {'stages', 'two_stage'} & set(
            cfg.train_cfg.get('clustering', {}))
        for h in cfg.get('custom_hooks', []):
            assert h['type'] not in ('ULDStageHook', 'PseudoLabelHook'), h
        for s in stages:
            assert 'pseudo_labels' in s, (path, s)  # written out, not implied
        if cfg.model.get('pose_vae') is None:
            assert {s['name'] for s in stages} <= {'bootstrap', 'duld'}


def test_all_four_datasets_have_dldpp_duld_and_zeroshot_configs():
    names = {osp.basename(p) for p in CONFIGS}
    for ds in ('aflw', 'mafl', 'ls3d', 'catheads'):
        for method in ('dldpp', 'duld', 'zeroshot'):
            assert f'{method}_{ds}.py' in names
