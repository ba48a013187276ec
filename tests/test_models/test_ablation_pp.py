# Copyright (c) mmuld contributors. All rights reserved.
"""The "+ PP" ablation of Table 2: D-ULD plus the proxy task, without
two-stage clustering and without the latent contrastive loss (Eq. 3)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpose.structures import PoseDataSample

from mmuld.clustering import PseudoLabelBank
from mmuld.registry import MODELS
from mmuld.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ABLATION = osp.join(ROOT, 'configs', 'dldpp_aflw_ablation_pp.py')
DEMO = osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py')
N_IMG, SIZE, STRIDE, K = 4, 64, 4, 10


def test_ablation_config_loads_without_tsc_and_eq3():
    register_all_modules()
    cfg = Config.fromfile(ABLATION)
    stages = cfg.model.stages
    assert stages[-1]['objective'] == 'duld'
    assert [s['name'] for s in stages] == [
        'bootstrap', 'duld', 'proxy', 'dldpp']
    # no two-stage clustering anywhere
    assert [s['pseudo_labels'] for s in stages] == [
        None, 'kmeans', 'kmeans', 'kmeans']
    # D-ULD's descriptor objective trains the descriptor head; the VAE is
    # not used in the last stage
    assert stages[-1]['frozen'] == ['pose_vae']
    # the full D-ULD++ config keeps Eq. 3 and two-stage clustering
    full = Config.fromfile(osp.join(ROOT, 'configs', 'dldpp_aflw.py'))
    assert full.model.stages[-1]['objective'] == 'latent'
    assert full.model.stages[-1]['pseudo_labels'] == 'two_stage'
    # the clustering reads the table; it has no list of its own
    for c in (cfg, full):
        assert c.train_cfg.type == 'ULDTrainLoop'
        assert 'two_stage' not in c.train_cfg.clustering


@pytest.fixture(scope='module')
def model(tiny_sd_dir):
    """The demo model with the ablation's stage table."""
    register_all_modules()
    cfg = Config.fromfile(DEMO)
    cfg.model.backbone.pretrained = tiny_sd_dir
    ablation = Config.fromfile(ABLATION)
    cfg.model.stages = ablation.model.stages
    torch.manual_seed(0)
    m = MODELS.build(cfg.model)
    m.train()
    return m


def _bank(pose_labels):
    g = torch.Generator().manual_seed(0)
    cells = torch.stack([torch.randperm(144, generator=g)[:K]
                         for _ in range(N_IMG)])
    cells = torch.stack([cells % 12 + 2, cells // 12 + 2], -1)
    valid = torch.ones(N_IMG, K, dtype=torch.bool)
    labels = pose_labels[:, None] * K + torch.arange(K)[None]
    return PseudoLabelBank(
        keypoints=(cells.float() + 0.5) * STRIDE - 0.5,
        valid=valid,
        labels=labels,
        pose_labels=pose_labels,
        codes=torch.randn(N_IMG, 64, generator=g))


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(N_IMG, 3, SIZE // 8, SIZE // 8, generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE),
                                        mode='bilinear')
    return x, [PoseDataSample(metainfo=dict(sample_idx=i))
               for i in range(N_IMG)]


def _losses(model, stage, bank):
    model.set_stage(stage)
    model.set_pseudo_labels(bank)
    x, samples = _batch()
    torch.manual_seed(0)  # same augmentation draws in every call
    return model.loss(x, samples)


def test_last_stage_trains_like_duld(model):
    bank = _bank(torch.zeros(N_IMG, dtype=torch.long))
    calls = []
    hooks = [
        model.pose_vae.register_forward_pre_hook(
            lambda *a: calls.append('pose_vae')),
        model.pose_vae.loss_latent.register_forward_pre_hook(
            lambda *a: calls.append('loss_latent')),
    ]
    encode = model.pose_vae.encode
    model.pose_vae.encode = lambda *a, **k: calls.append('encode') or \
        encode(*a, **k)
    try:
        last = _losses(model, 'dldpp', bank)
    finally:
        del model.pose_vae.encode
        for h in hooks:
            h.remove()
    assert 'loss_latent' not in last
    assert {'loss_heatmap', 'loss_descriptor'} <= set(last)
    assert calls == []  # neither the VAE nor Eq. 3 ran: no pose input
    duld = _losses(model, 'duld', bank)
    assert set(last) == set(duld)
    for key in last:
        torch.testing.assert_close(last[key], duld[key], rtol=0, atol=0)


def test_pose_labels_do_not_enter_the_loss(model):
    """Two-stage pseudo-labels are refused rather than silently used."""
    bank = _bank(torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match='two_stage'):
        _losses(model, 'dldpp', bank)


def test_unknown_objective_is_refused(tiny_sd_dir):
    register_all_modules()
    cfg = Config.fromfile(DEMO)
    cfg.model.backbone.pretrained = tiny_sd_dir
    cfg.model.stages[-1]['objective'] = 'pp'
    with pytest.raises(ValueError, match="objective='pp'"):
        MODELS.build(cfg.model)
    # only the last stage has an objective
    cfg.model.stages[-1]['objective'] = 'latent'
    cfg.model.stages[1]['objective'] = 'duld'
    with pytest.raises(ValueError, match='only the dldpp stage'):
        MODELS.build(cfg.model)


def test_objective_and_its_pseudo_labels_must_agree(tiny_sd_dir):
    """The "+ PP" objective with two-stage labels in the stage table, or
    Eq. 3 without them, is refused when the model is built; without
    ``pseudo_labels`` the stage gets the objective's."""
    register_all_modules()
    cfg = Config.fromfile(DEMO)
    cfg.model.backbone.pretrained = tiny_sd_dir
    cfg.model.stages[-1]['objective'] = 'duld'
    with pytest.raises(ValueError, match="pseudo_labels='kmeans'"):
        MODELS.build(cfg.model)  # the demo's dldpp stage is 'two_stage'
    cfg.model.stages[-1]['objective'] = 'latent'
    cfg.model.stages[-1]['pseudo_labels'] = 'kmeans'
    with pytest.raises(ValueError, match="pseudo_labels='two_stage'"):
        MODELS.build(cfg.model)
    cfg.model.stages[-1]['objective'] = 'duld'
    del cfg.model.stages[-1]['pseudo_labels']
    model = MODELS.build(cfg.model)
    assert model.stage_schedule[-1].pseudo_labels == 'kmeans'
    model.set_stage('dldpp')
    assert model.objective == 'duld'
