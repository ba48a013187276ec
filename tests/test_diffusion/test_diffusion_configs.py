# Copyright (c) mmuld contributors. All rights reserved.
"""The diffusion configs run the learnability benchmark end to end on a
small diffusion model trained on the world's own training images."""
import json
import math
import os.path as osp
import sys

import pytest

from mmuld.datasets.synthetic_faces import FaceWorldConfig, make_face_world
from mmuld.diffusion import SmallDiffusionConfig, SmallDiffusionTrainer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DLDPP = osp.join(ROOT, 'configs', 'dldpp_face_world_diffusion.py')
ZEROSHOT = osp.join(ROOT, 'configs', 'zeroshot_face_world_diffusion.py')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    data = str(tmp_path_factory.mktemp('world'))
    make_face_world(data, num_train=16, num_test=8, seed=5,
                    cfg=FaceWorldConfig(image_size=64))
    cfg = SmallDiffusionConfig(
        size=64, steps=3, vae_steps=3, batch_size=4, vae_batch_size=4,
        vae_channels=(8, 16), unet_channels=(16, 32),
        cross_attention_dim=32, num_samples=1, sample_steps=1)
    sd = osp.join(data, 'small_sd')
    SmallDiffusionTrainer(
        data, sd, cfg, ann_file=osp.join(data, 'annotations/train.json'),
        progress=False).run()
    return data, sd


def _run(world, work, methods, *options):
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    import learnability as tool
    data, sd = world
    return tool.main([
        '--data-root', data, '--train-ann', 'annotations/train.json',
        '--test-ann', 'annotations/test.json', '--work-dir', work,
        '--config', DLDPP, '--zeroshot-config', ZEROSHOT, '--methods',
        *methods, '--stage-iters', '2', '2', '2', '2', '--cluster-interval',
        '2', '--num-grid', '2', '--cfg-options',
        f'model.backbone.pretrained={sd}', 'train_dataloader.batch_size=4',
        'train_cfg.clustering.batch_size=8',
        'train_cfg.clustering.num_pose_clusters=2',
        *options
    ])


def test_zeroshot_with_the_papers_random_aggregator_trains_nothing(
        world, tmp_path):
    work = str(tmp_path / 'zs')
    summary = _run(world, work, ['zeroshot'], 'zeroshot_from_bootstrap=False')
    assert not osp.exists(osp.join(work, 'dldpp_train'))
    nme = summary['results']['ZeroShot']['forward']
    assert math.isfinite(nme) and nme > 0


def test_every_method_runs_on_the_small_diffusion_model(world, tmp_path):
    work = str(tmp_path / 'all')
    summary = _run(world, work, ['zeroshot', 'duld', 'dldpp'])
    for method in ('ZeroShot', 'D-ULD', 'D-ULD++'):
        row = summary['results'][method]
        assert math.isfinite(row['forward']), (method, row)
        assert len(row['per_landmark_accuracy']) == 5
    assert osp.isfile(osp.join(work, 'dldpp_train', 'stage4_dldpp.pth'))
    with open(osp.join(work, 'learnability.json')) as f:
        assert json.load(f)['results'].keys() >= {'ZeroShot', 'D-ULD++'}


def test_probe_tool_scores_the_trained_model(world):
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    import diffusion_probe
    data, sd = world
    errors = diffusion_probe.main([
        '--data-root', data, '--ref-ann', 'annotations/train.json',
        '--query-ann', 'annotations/test.json', sd
    ])
    assert 0 <= errors[sd] < math.sqrt(2)
    assert 0 < errors['mean position'] < math.sqrt(2)
