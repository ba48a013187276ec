# Copyright (c) mmuld contributors. All rights reserved.
"""Shared pytest fixtures."""
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py')
FACE_DIR = osp.join(ROOT, 'data', 'face_samples')
# a short D-ULD++ run: every stage, 5 clustering rounds
PIPELINE_STAGES = [
    dict(name='bootstrap', iters=2, lr=1e-3, frozen=['pose_vae']),
    dict(name='duld', iters=3, lr=1e-3, frozen=['pose_vae']),
    dict(name='proxy', iters=2, lr=5e-4, frozen=['descriptor_head']),
    dict(name='dldpp', iters=3, lr=5e-4,
         frozen=['descriptor_head', 'pose_vae.decoder',
                 'pose_vae.fc_decode']),
]


@pytest.fixture(scope='session')
def tiny_sd_dir(tmp_path_factory) -> str:
    """A tiny Stable Diffusion model saved in diffusers layout (built once)."""
    from mmuld.testing import build_tiny_sd
    return build_tiny_sd(str(tmp_path_factory.mktemp('tiny_sd')))


def _pipeline_cfg(work_dir, tiny_sd_dir, name, stages=None):
    """Demo D-ULD++ config on data/face_samples with the tiny SD model."""
    from mmengine.config import Config

    from mmuld.utils import register_all_modules
    register_all_modules()
    stages = PIPELINE_STAGES if stages is None else stages
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.model.backbone.pretrained = tiny_sd_dir
    for ds in [cfg.train_dataloader.dataset,
               *cfg.test_dataloader.dataset.datasets]:
        ds.data_root = FACE_DIR
    cfg.model.stages = stages
    cfg.train_cfg.clustering = dict(interval=2, num_pose_clusters=2,
                                    batch_size=4)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, by_epoch=False)
    return cfg


@pytest.fixture(scope='session')
def pipeline_cfg(tiny_sd_dir):
    """``make(work_dir, name, stages=None)``: a runnable demo config."""

    def make(work_dir, name, stages=None):
        return _pipeline_cfg(work_dir, tiny_sd_dir, name, stages)

    return make


@pytest.fixture(scope='session')
def trained_dldpp(tmp_path_factory, pipeline_cfg, tiny_sd_dir):
    """The demo D-ULD++ model trained through all four stages (seconds).

    Returns:
        dict: ``work_dir``, ``runner``, ``checkpoint`` (the last stage's),
        ``config``, ``cfg_options`` (for ``init_model`` / tools) and
        ``num_landmarks``.
    """
    from mmengine.runner import Runner
    work = tmp_path_factory.mktemp('dldpp_trained')
    runner = Runner.from_cfg(pipeline_cfg(work, 'trained_dldpp'))
    runner.train()
    n = len(PIPELINE_STAGES)
    ckpt = osp.join(str(work), f'stage{n}_{PIPELINE_STAGES[-1]["name"]}.pth')
    return dict(
        work_dir=work,
        runner=runner,
        checkpoint=ckpt,
        config=DEMO_CONFIG,
        cfg_options={
            'model.backbone.pretrained': tiny_sd_dir,
            'train_dataloader.dataset.data_root': FACE_DIR,
        },
        num_landmarks=runner.model.num_landmarks)
