# Copyright (c) mmuld contributors. All rights reserved.
"""Checkpoints say what they are (and a mismatch is refused); the log shows
the current stage's losses only; bad settings fail before iteration 1."""
import glob
import importlib.util
import json
import os.path as osp
import re
import sys

import pytest
from mmengine.runner import Runner

from mmuld.utils import CheckpointMismatchError, load_checkpoint_file

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DLDPP_CFG = osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py')
DULD_CFG = osp.join(ROOT, 'configs', 'duld_face_samples_demo.py')


def test_log_shows_the_current_stage_losses_only(trained_dldpp):
    work = str(trained_dldpp['work_dir'])
    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    with open(scalars[0]) as f:
        rows = [json.loads(line) for line in f]
    by_step = {r['step']: set(r) for r in rows if 'loss' in r}
    boot = {k for k in by_step[2] if k.startswith('loss_boot')}
    assert boot
    # logged every 2 iterations: 2 bootstrap, 4 duld, 6 proxy, 8/10 dldpp;
    # each line has its own stage's losses only (and no frozen values of
    # earlier stages' other outputs, e.g. gnorm_*)
    assert 'loss_descriptor' in by_step[4] and not boot & by_step[4]
    assert 'loss_recon' in by_step[6] and 'loss_descriptor' not in by_step[6]
    assert not boot & by_step[6]
    for step in (8, 10):
        assert 'loss_latent' in by_step[step]
        stale = {'loss_descriptor', 'loss_recon', 'loss_kl', 'gnorm_recon',
                 'gnorm_kl', 'gnorm_descriptor'} | boot
        assert not stale & by_step[step], stale & by_step[step]
    assert by_step[8] == by_step[10]
    # every clustering summary is a log line of its own, with its time
    log = glob.glob(osp.join(work, '*', '*.log'))[0]
    with open(log) as f:
        lines = f.read().splitlines()
    summaries = [
        ln for ln in lines if re.search(r'INFO - clustering round \d+: ', ln)
    ]
    rounds = glob.glob(osp.join(work, 'pseudo_labels', '*.npz'))
    assert len(summaries) == len(rounds) >= 5
    assert all(re.match(r'\d{4}/\d{2}/\d{2} ', ln) for ln in summaries)


def test_checkpoints_say_what_they_are(trained_dldpp, tiny_sd_dir, tmp_path):
    from mmengine.runner import save_checkpoint

    from mmuld.apis import init_model
    work = str(trained_dldpp['work_dir'])
    stage4 = osp.join(work, 'stage4_dldpp.pth')
    assert load_checkpoint_file(stage4)['meta']['uld'] == dict(
        method='dldpp', stage='dldpp', num_landmarks=10, num_pose_clusters=2)
    meta2 = load_checkpoint_file(osp.join(work, 'stage2_duld.pth'))['meta']
    assert meta2['uld'] == dict(
        method='dldpp', stage='duld', num_landmarks=10,
        num_pose_clusters=None)
    opts = {'model.backbone.pretrained': tiny_sd_dir}
    model = init_model(DLDPP_CFG, stage4, 'cpu', opts)  # the right config
    assert model.uld_pose_centroids.shape == (2, 64)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'stage4_dldpp.pth is D-ULD\+\+ \(stage "dldpp", K=10, '
            r'Q=2\) but the config .*duld_face_samples_demo.py builds '
            r'D-ULD \(K=10\): method differ'):
        init_model(DULD_CFG, stage4, 'cpu', opts)
    with pytest.raises(CheckpointMismatchError, match='Q differ'):
        init_model(DLDPP_CFG, stage4, 'cpu',
                   {**opts, 'train_cfg.clustering.num_pose_clusters': 3})
    with pytest.raises(CheckpointMismatchError, match='K differ'):
        init_model(DLDPP_CFG, stage4, 'cpu', {
            **opts, 'model.num_landmarks': 8
        })
    # a D-ULD checkpoint (saved without meta) with the D-ULD++ config
    duld = init_model(DULD_CFG, None, 'cpu', opts)
    duld_ckpt = str(tmp_path / 'duld.pth')
    save_checkpoint(dict(state_dict=duld.state_dict(), meta={}), duld_ckpt)
    with pytest.raises(
            CheckpointMismatchError,
            match=r'duld.pth is D-ULD but .* builds D-ULD\+\+'):
        init_model(DLDPP_CFG, duld_ckpt, 'cpu', opts)


def test_tools_test_refuses_another_methods_checkpoint(
        trained_dldpp, tiny_sd_dir, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        'uld_test_tool', osp.join(ROOT, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.chdir(ROOT)
    stage4 = osp.join(str(trained_dldpp['work_dir']), 'stage4_dldpp.pth')
    monkeypatch.setattr(sys, 'argv', [
        'test.py', DULD_CFG, stage4, '--work-dir',
        str(tmp_path), '--cfg-options',
        f'model.backbone.pretrained={tiny_sd_dir}'
    ])
    with pytest.raises(CheckpointMismatchError, match='stage4_dldpp.pth'):
        tool.main()


def _fails_before_iteration_one(cfg, match):
    runner = Runner.from_cfg(cfg)
    iters = []
    runner.model.loss = lambda *a, **k: iters.append(1)
    with pytest.raises(ValueError, match=match):
        runner.train()
    assert not iters


@pytest.mark.parametrize('setting,match', [
    ({'model.num_landmarks': 0}, r'model.num_landmarks=0'),
    ({'pose_clusters': 9}, r'num_pose_clusters=9 is more than the 8 '
     r'training images'),
    ({'no_vae': True}, r"stages \['proxy', 'dldpp'\] need a pose VAE"),
    ({'max_iters': 7}, r'train_cfg.max_iters=7 differs from the 10 '
     r'iterations of the stage table'),
])
def test_bad_settings_fail_before_the_first_iteration(
        pipeline_cfg, tmp_path, setting, match):
    cfg = pipeline_cfg(tmp_path, 'bad')
    if 'model.num_landmarks' in setting:
        cfg.model.num_landmarks = 0
    if 'pose_clusters' in setting:
        cfg.train_cfg.clustering.num_pose_clusters = setting['pose_clusters']
    if 'no_vae' in setting:
        cfg.model.pose_vae = None
    if 'max_iters' in setting:
        cfg.train_cfg.max_iters = setting['max_iters']
    _fails_before_iteration_one(cfg, match)


def test_bad_hook_values_fail_at_build():
    from mmuld.engine import ClusteringRounds
    from mmuld.models import StageSchedule
    with pytest.raises(ValueError, match='num_pose_clusters=0'):
        ClusteringRounds(num_pose_clusters=0)
    with pytest.raises(ValueError, match='corner_subpix=4'):
        ClusteringRounds(corner_subpix=4)  # a share of the side, not px
    with pytest.raises(ValueError, match="unknown stage name 'dlpp'"):
        StageSchedule([dict(name='dlpp', iters=3)])
    with pytest.raises(ValueError, match='stage duld: lr=0 must be positive'):
        StageSchedule([dict(name='duld', iters=3, lr=0)])


def test_two_runs_in_one_process_log_to_their_own_work_dirs(
        pipeline_cfg, tmp_path):
    """A second Runner in the same process (learnability.py trains several
    methods) gets its own visualizer, so its scalars land in its work_dir."""
    dirs = []
    for name in ('first', 'second'):
        cfg = pipeline_cfg(tmp_path / name, name)
        runner = Runner.from_cfg(cfg)
        backend = runner.visualizer._vis_backends['LocalVisBackend']
        dirs.append(osp.realpath(backend._save_dir))
        assert dirs[-1].startswith(osp.realpath(str(tmp_path / name))), (
            name, dirs[-1])
    assert dirs[0] != dirs[1]
