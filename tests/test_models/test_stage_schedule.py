# Copyright (c) mmuld contributors. All rights reserved.
"""The stage table (one place for stage names, lengths, lr, frozen modules
and pseudo-labels) and the per-stage loss methods of ULDEstimator."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch

from mmuld.engine import ClusteringRounds
from mmuld.models import STAGE_NAMES, StageSchedule
from mmuld.models.pose_estimators import stages as stages_module
from mmuld.models.pose_estimators.stages import schedule_of

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TABLE = [
    dict(name='bootstrap', iters=2, lr=1e-3, frozen=['pose_vae']),
    dict(name='duld', iters=3, lr=1e-3, pseudo_labels='kmeans'),
    dict(name='proxy', iters=2, frozen=['descriptor_head']),
    dict(name='dldpp', iters=3, lr=5e-4, pseudo_labels='two_stage'),
]


def test_iterations_resolve_to_their_stage():
    sched = StageSchedule(TABLE)
    expected = ['bootstrap'] * 2 + ['duld'] * 3 + ['proxy'] * 2 + \
        ['dldpp'] * 3
    assert [sched.at(i).name for i in range(10)] == expected
    # past the end (the final clustering round): the last stage
    assert sched.at(10).name == sched.at(99).name == 'dldpp'
    assert sched.total_iters == 10 and sched.ends == [2, 5, 7, 10]
    assert [(s.start, s.end) for s in sched] == [
        (0, 2), (2, 5), (5, 7), (7, 10)]
    assert sched[2].lr is None  # keeps the optimizer's
    assert sched[0].frozen == ('pose_vae', )
    # pseudo-labels: written out, or the paper's choice for the name
    assert [s.pseudo_labels for s in sched] == [
        None, 'kmeans', 'kmeans', 'two_stage']
    assert sched.uses('two_stage') and sched[3].two_stage
    assert StageSchedule(sched.to_list()).to_list() == sched.to_list()


def test_stage_names_live_in_one_place():
    assert STAGE_NAMES == ('bootstrap', 'duld', 'proxy', 'dldpp')
    assert set(stages_module.DEFAULT_PSEUDO_LABELS) == set(STAGE_NAMES)
    from mmuld.engine import loops
    from mmuld.models.pose_estimators import uld_estimator
    for module in (loops, uld_estimator):
        assert not hasattr(module, 'STAGES')
        assert not hasattr(module, 'STAGE_NAMES') or \
            module.STAGE_NAMES is STAGE_NAMES


@pytest.mark.parametrize('stage,match', [
    (dict(name='dlpp', iters=3), "unknown stage name 'dlpp'"),
    (dict(name='duld', iters=0), 'stage duld has no iterations'),
    (dict(name='duld', iters=3, lr=0), 'lr=0 must be positive'),
    (dict(name='duld', iters=3, pseudo_labels='tsc'), "pseudo_labels='tsc'"),
    (dict(name='duld', iters=3, pseudo_labels=None), 'trains on pseudo'),
    (dict(name='bootstrap', iters=3, pseudo_labels='kmeans'),
     'must be None'),
    (dict(name='duld', iters=3, frozn=['x']), r"unknown keys \['frozn'\]"),
    (dict(iters=3), 'needs `name` and `iters`'),
])
def test_bad_stage_tables_are_refused(stage, match):
    with pytest.raises(ValueError, match=match):
        StageSchedule([stage])
    with pytest.raises(ValueError, match='at least one stage'):
        StageSchedule([])


def test_a_model_without_a_table_is_refused():
    with pytest.raises(ValueError, match='set `model.stages`'):
        schedule_of(SimpleNamespace(stage_schedule=None))
    # a wrapped model (DDP) has its module's table
    model = SimpleNamespace(stage_schedule=StageSchedule(TABLE))
    assert schedule_of(SimpleNamespace(module=model)).at(5) == \
        model.stage_schedule.at(5)


def test_clustering_takes_no_stage_list_of_its_own():
    with pytest.raises(TypeError):
        ClusteringRounds(two_stage=())


@pytest.fixture(scope='module')
def model():
    from mmengine.config import Config

    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py'))
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_the_model_holds_the_config_table(model):
    assert model.stage_schedule.names == list(STAGE_NAMES)
    assert model.stage_schedule.at(0).pseudo_labels is None
    assert model.stage_schedule[-1].pseudo_labels == 'two_stage'


@pytest.mark.parametrize('stage', STAGE_NAMES)
def test_each_stage_has_its_own_loss_method(model, stage, monkeypatch):
    method = model.stage_loss(stage)
    assert method.__name__ == f'_loss_{stage}'
    calls = []
    monkeypatch.setattr(model, f'_loss_{stage}',
                        lambda x, s: calls.append(stage) or {'loss_x': x})
    model.set_stage(stage)
    assert model.loss('inputs', [])['loss_x'] == 'inputs'
    assert calls == [stage]
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        model.stage_loss('nope')
