# Copyright (c) mmuld contributors. All rights reserved.
"""The whole D-ULD++ pipeline on the real face samples, and resume."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmuld.engine import PseudoLabelBank
from mmuld.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGES = [
    dict(name='bootstrap', iters=2, lr=1e-3, frozen=['pose_vae']),
    dict(name='duld', iters=3, lr=1e-3, frozen=['pose_vae']),
    dict(name='proxy', iters=2, lr=5e-4, frozen=['descriptor_head']),
    dict(name='dldpp', iters=3, lr=5e-4,
         frozen=['descriptor_head', 'pose_vae.decoder',
                 'pose_vae.fc_decode']),
]


def _cfg(work_dir, tiny_sd_dir, name):
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, 'configs',
                                   'dldpp_face_samples_demo.py'))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.model.backbone.pretrained = tiny_sd_dir
    for ds in [cfg.train_dataloader.dataset,
               *cfg.test_dataloader.dataset.datasets]:
        ds.data_root = osp.join(ROOT, 'data', 'face_samples')
    cfg.custom_hooks = [
        dict(type='NaNLossHook'),
        dict(type='ULDStageHook', stages=STAGES),
        dict(type='PseudoLabelHook', interval=2, num_pose_clusters=2,
             batch_size=4),
    ]
    cfg.train_cfg.max_iters = sum(s['iters'] for s in STAGES)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, by_epoch=False)
    return cfg


def _hook(runner, name):
    return [h for h in runner.hooks if type(h).__name__ == name][0]


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_sd_dir):
    work = tmp_path_factory.mktemp('dldpp')
    runner = Runner.from_cfg(_cfg(work, tiny_sd_dir, 'full'))
    runner.train()
    return work, runner


def test_full_pipeline_runs_every_stage(trained):
    work, runner = trained
    for i, s in enumerate(STAGES):
        assert osp.isfile(osp.join(work, f'stage{i + 1}_{s["name"]}.pth'))
    rounds = sorted(glob.glob(osp.join(work, 'pseudo_labels', '*.npz')))
    # duld: 2 rounds, proxy: 1 round, dldpp: 2 rounds
    assert len(rounds) == 5, rounds
    last = PseudoLabelBank.load(rounds[-1])
    assert last.codes is not None and last.codes.shape == (8, 64)
    assert last.valid.shape == (8, 10) and last.valid.any()
    # two-stage labels r = u * K + k
    lab = last.labels[last.valid]
    u = last.pose_labels[:, None].expand_as(last.labels)[last.valid]
    assert torch.equal(lab // 10, u)
    model = runner.model
    assert model.stage == 'dldpp'
    assert model.uld_pose_centroids.shape == (2, 64)
    assert model.uld_centroids.shape[:2] == (2, 10)


@pytest.mark.parametrize('ckpt_iter,stage', [(6, 'proxy'), (9, 'dldpp')])
def test_resume_restores_stage_and_pseudo_labels(trained, tmp_path,
                                                 tiny_sd_dir, ckpt_iter,
                                                 stage):
    work, _ = trained
    ckpt_path = osp.join(work, f'iter_{ckpt_iter}.pth')
    ckpt = torch.load(ckpt_path, map_location='cpu')  # weights_only=True
    cfg = _cfg(tmp_path, tiny_sd_dir, f'resume{ckpt_iter}')
    cfg.resume = True
    cfg.load_from = ckpt_path
    runner = Runner.from_cfg(cfg)
    seen = {}

    def spy(model_stage, runner=runner):
        seen.setdefault('iter', runner.iter)
        seen.setdefault('stage', runner.model.stage)
        seen.setdefault('bank', runner.model.pseudo_labels)
        seen.setdefault('weights', {
            k: v.clone() for k, v in runner.model.state_dict().items()})

    stage_hook = _hook(runner, 'ULDStageHook')
    orig = stage_hook.before_train

    def before_train(r):
        orig(r)
        spy(None)

    stage_hook.before_train = before_train
    runner.train()
    assert seen['iter'] == ckpt_iter
    assert seen['stage'] == stage
    saved = ckpt['pseudo_labels']['bank']
    assert torch.equal(seen['bank'].keypoints, saved['keypoints'])
    assert torch.equal(seen['bank'].labels, saved['labels'])
    assert torch.equal(seen['bank'].pose_labels, saved['pose_labels'])
    if saved.get('codes') is not None:
        assert torch.equal(seen['bank'].codes, saved['codes'])
    for k, v in ckpt['state_dict'].items():
        assert torch.equal(seen['weights'][k].cpu(), v), k
    assert runner.iter == sum(s['iters'] for s in STAGES)


def test_nan_loss_stops_with_iteration(tmp_path, tiny_sd_dir):
    cfg = _cfg(tmp_path, tiny_sd_dir, 'nan')
    cfg.custom_hooks[1] = dict(type='ULDStageHook', stages=STAGES[:1])
    cfg.train_cfg.max_iters = 2
    runner = Runner.from_cfg(cfg)
    orig = runner.model.loss

    def bad_loss(*args, **kwargs):
        out = orig(*args, **kwargs)
        out['loss_boot_kpt'] = out['loss_boot_kpt'] * float('nan')
        return out

    runner.model.loss = bad_loss
    with pytest.raises(FloatingPointError, match='iteration 1'):
        runner.train()
