# Copyright (c) mmuld contributors. All rights reserved.
"""The whole D-ULD++ pipeline on the real face samples, and resume."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmuld.clustering import PseudoLabelBank
from mmuld.clustering.pseudo_label_bank import BANK_BUFFER_PREFIX

# the stages of the session's `trained_dldpp` run (tests/conftest.py)
STAGES = [
    dict(name='bootstrap', iters=2, lr=1e-3, frozen=['pose_vae']),
    dict(name='duld', iters=3, lr=1e-3, frozen=['pose_vae']),
    dict(name='proxy', iters=2, lr=5e-4, frozen=['descriptor_head']),
    dict(name='dldpp', iters=3, lr=5e-4,
         frozen=['descriptor_head', 'pose_vae.decoder',
                 'pose_vae.fc_decode']),
]


@pytest.fixture(scope='module')
def trained(trained_dldpp):
    """The session's trained model (tests/conftest.py)."""
    assert trained_dldpp['runner'].cfg.model.stages == STAGES
    return trained_dldpp['work_dir'], trained_dldpp['runner']


def test_full_pipeline_runs_every_stage(trained):
    work, runner = trained
    for i, s in enumerate(STAGES):
        assert osp.isfile(osp.join(work, f'stage{i + 1}_{s["name"]}.pth'))
    rounds = sorted(glob.glob(osp.join(work, 'pseudo_labels', '*.npz')))
    # duld: 2 rounds, proxy: 1 round, dldpp: 2 rounds + the final round
    assert len(rounds) == 6, rounds
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


def _changed(work, a, b, params):
    """Module prefixes whose parameters differ between two checkpoints."""
    sa = torch.load(osp.join(work, a), map_location='cpu')['state_dict']
    sb = torch.load(osp.join(work, b), map_location='cpu')['state_dict']
    prefixes = ('backbone.aggregator', 'detector_head', 'descriptor_head',
                'pose_vae.encoder', 'pose_vae.fc_mu', 'pose_vae.decoder',
                'pose_vae.fc_decode')
    out = set()
    for k, v in sa.items():
        if k in params and k.startswith(prefixes) and \
                not torch.equal(v, sb[k]):
            out.add(next(p for p in prefixes if k.startswith(p)))
    return out


def test_each_stage_trains_its_modules(trained):
    """Between stage ends, the trained modules move, the frozen ones and
    those no loss of the stage reaches stay put."""
    work, runner = trained
    params = {n for n, _ in runner.model.named_parameters()}
    names = [f'stage{i + 1}_{s["name"]}.pth' for i, s in enumerate(STAGES)]
    assert _changed(work, names[0], names[1], params) == {
        'backbone.aggregator', 'detector_head', 'descriptor_head'}
    assert _changed(work, names[1], names[2], params) == {
        'backbone.aggregator', 'detector_head', 'pose_vae.encoder',
        'pose_vae.fc_mu', 'pose_vae.decoder', 'pose_vae.fc_decode'}
    assert _changed(work, names[2], names[3], params) == {
        'backbone.aggregator', 'detector_head', 'pose_vae.encoder',
        'pose_vae.fc_mu'}


@pytest.mark.parametrize('ckpt_iter,stage', [(6, 'proxy'), (9, 'dldpp')])
def test_resume_restores_stage_and_pseudo_labels(trained, tmp_path,
                                                 pipeline_cfg, ckpt_iter,
                                                 stage):
    work, _ = trained
    ckpt_path = osp.join(work, f'iter_{ckpt_iter}.pth')
    ckpt = torch.load(ckpt_path, map_location='cpu')  # weights_only=True
    cfg = pipeline_cfg(tmp_path, f'resume{ckpt_iter}')
    cfg.resume = True
    cfg.load_from = ckpt_path
    runner = Runner.from_cfg(cfg)
    seen = {}

    class Spy(Hook):
        """What the run starts from: after loading (before_train), and
        the stage it enters (first iteration)."""

        def before_train(self, r):
            seen['iter'] = r.iter
            seen['bank'] = r.model.pseudo_labels
            seen['weights'] = {
                k: v.clone() for k, v in r.model.state_dict().items()}

        def before_train_iter(self, r, batch_idx, data_batch=None):
            seen.setdefault('stage', r.model.stage)

    runner.register_hook(Spy(), 'LOWEST')
    runner.train()
    assert seen['iter'] == ckpt_iter
    assert seen['stage'] == stage
    # the model's state_dict holds the bank
    saved = PseudoLabelBank.from_buffers(
        ckpt['state_dict'], BANK_BUFFER_PREFIX).state_dict()
    assert torch.equal(seen['bank'].keypoints, saved['keypoints'])
    assert torch.equal(seen['bank'].labels, saved['labels'])
    assert torch.equal(seen['bank'].pose_labels, saved['pose_labels'])
    if saved.get('codes') is not None:
        assert torch.equal(seen['bank'].codes, saved['codes'])
    for k, v in ckpt['state_dict'].items():
        # centroids of a missing cluster are NaN rows: NaN equals NaN here
        torch.testing.assert_close(
            seen['weights'][k].cpu(), v, rtol=0, atol=0, equal_nan=True,
            msg=k)
    assert runner.iter == sum(s['iters'] for s in STAGES)
    # the resumed run ends exactly where the uninterrupted one did: the
    # random states of the later stages (VAE noise, ...) were restored
    full = trained[1].model.state_dict()
    for k, v in runner.model.state_dict().items():
        torch.testing.assert_close(
            v, full[k], rtol=0, atol=0, equal_nan=True, msg=k)


def test_nan_loss_stops_with_iteration(tmp_path, pipeline_cfg):
    cfg = pipeline_cfg(tmp_path, 'nan')
    cfg.model.stages = [dict(STAGES[0], iters=2)]
    runner = Runner.from_cfg(cfg)
    orig = runner.model.loss

    def bad_loss(*args, **kwargs):
        out = orig(*args, **kwargs)
        out['loss_boot_kpt'] = out['loss_boot_kpt'] * float('nan')
        return out

    runner.model.loss = bad_loss
    with pytest.raises(FloatingPointError, match='iteration 1'):
        runner.train()
