# Copyright (c) mmuld contributors. All rights reserved.
"""Clustering rounds and ZeroShot fitting extract without autograd.

A round stores keypoints, descriptors and codes of the whole training set.
With autograd on, each stored slice of a batch keeps that batch's graph
(every activation of the forward pass) alive until the round ends, which
at Stable Diffusion size is of the order of a gigabyte per image.
"""
import os.path as osp
from types import SimpleNamespace

import torch
from mmengine.config import Config

from mmuld.engine import ClusteringRounds
from mmuld.registry import MODELS
from mmuld.testing import cpu_round_setup
from mmuld.utils import register_all_modules
from mmuld.utils.tensor_memory import TensorMemoryTracker

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FACES = osp.join(ROOT, 'data', 'face_samples')


def _setup():
    """The CPU default model (a trainable ResNet: its parameters require
    grad) on the real face samples, entered into the D-ULD stage."""
    model, runner, _, _ = cpu_round_setup(name='round_no_grad')
    model.train()
    return model, runner


def _stored_bytes(res: dict) -> int:
    tensors = [t for key in ('keypoints', 'descriptors', 'image_ids',
                             'border') for t in res[key]]
    tensors += list(res['codes'].values())
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for t in tensors}
    return sum(storages.values())


def test_round_extracts_without_autograd():
    model, runner = _setup()
    assert any(p.requires_grad for p in model.parameters())
    grad_modes = []
    extract = model.extract_keypoints

    def spy(*args, **kwargs):
        grad_modes.append(torch.is_grad_enabled())
        return extract(*args, **kwargs)

    model.extract_keypoints = spy
    hook = ClusteringRounds(batch_size=4)
    tracker = TensorMemoryTracker()
    # weights and buffers exist already (views of them are not new memory)
    tracker.add_existing([*model.parameters(), *model.buffers()])
    existing = tracker.current
    with tracker:
        res = hook._extract(runner, with_codes=True, dense=True)
    held = tracker.current - existing
    assert grad_modes and not any(grad_modes)
    stored = [t for key in ('keypoints', 'descriptors') for t in res[key]]
    stored += list(res['codes'].values())
    assert len(res['keypoints']) == len(runner.train_dataloader.dataset)
    assert all(t.grad_fn is None and not t.requires_grad for t in stored)
    # what the round holds after extracting is what it stores: no graph
    # (activations of every batch) kept alive by the stored slices
    assert held <= _stored_bytes(res), (held, _stored_bytes(res))
    # the model is back in training mode, as the round found it
    assert model.training


def test_zeroshot_fit_extracts_without_autograd():
    from mmuld.engine.hooks.zeroshot_fit_hook import ZeroShotFitHook
    register_all_modules()
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'zeroshot_face_world_cpu.py'))
    model = MODELS.build(cfg.model)
    grad_modes = []
    sample = model.sample_descriptors_in_roi

    def spy(*args, **kwargs):
        grad_modes.append(torch.is_grad_enabled())
        return sample(*args, **kwargs)

    model.sample_descriptors_in_roi = spy
    loader_cfg = cfg.fit_dataloader
    loader_cfg.dataset.update(data_root=FACES, ann_file='uld_5pt_train.json')
    from mmengine.runner import Runner
    runner = SimpleNamespace(
        build_dataloader=lambda c: Runner.build_dataloader(c))
    hook = ZeroShotFitHook(fit_dataloader=loader_cfg)
    res = hook._extract(runner, model, loader_cfg)
    assert grad_modes and not any(grad_modes)
    assert res['num_images'] == 8
    assert res['descriptors'].grad_fn is None
