# Copyright (c) mmuld contributors. All rights reserved.
"""The model owns its training state: the stage table that both hooks
read, and the pseudo-label bank, centroids and pose centroids in its
``state_dict``."""
import os
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmuld.clustering import PseudoLabelBank
from mmuld.registry import MODELS

BANK_FIELDS = ('keypoints', 'valid', 'labels', 'pose_labels', 'codes')


def _fresh_model(runner):
    torch.manual_seed(1)  # other weights than the trained ones
    return MODELS.build(runner.cfg.model)


def _assert_same_state(model, ref):
    bank, want = model.pseudo_labels, ref.pseudo_labels
    assert bank is not None
    for f in BANK_FIELDS:
        assert torch.equal(getattr(bank, f), getattr(want, f)), f
    assert (bank.round, bank.iteration) == (want.round, want.iteration)
    for key in ('uld_centroids', 'uld_pose_centroids'):
        torch.testing.assert_close(getattr(model, key), getattr(ref, key),
                                   rtol=0, atol=0, equal_nan=True, msg=key)


def test_state_dict_alone_restores_bank_and_centroids(trained_dldpp):
    runner = trained_dldpp['runner']
    trained = runner.model
    assert trained.pseudo_labels.codes is not None  # a two-stage round
    assert trained.uld_pose_centroids.numel()
    model = _fresh_model(runner)
    assert model.pseudo_labels is None
    assert model.uld_centroids.numel() == 0
    model.load_state_dict(trained.state_dict())  # strict
    _assert_same_state(model, trained)


def test_a_checkpoint_file_restores_them_with_weights_only(trained_dldpp):
    """``torch.load(weights_only=True)`` of a stage checkpoint, then
    ``load_state_dict``: no hook involved."""
    runner = trained_dldpp['runner']
    ckpt = torch.load(trained_dldpp['checkpoint'], map_location='cpu',
                      weights_only=True)
    # the hooks no longer store the pseudo-labels beside the weights
    assert 'pseudo_labels' not in ckpt
    model = _fresh_model(runner)
    model.load_state_dict(ckpt['state_dict'])
    _assert_same_state(model, runner.model)
    # the bank of the final round (after the last iteration)
    assert model.pseudo_labels.iteration == runner.max_iters
    assert model.pseudo_labels.round == 6


class _StageProbe(Hook):
    """Records, after every iteration, the stage the model trained in and
    the iteration of the bank it trained on."""

    priority = 'LOWEST'

    def __init__(self):
        self.records = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        bank = runner.model.pseudo_labels
        self.records.append(
            (runner.iter, runner.model.stage,
             None if bank is None else bank.iteration))


def test_rounds_run_at_their_iterations(pipeline_cfg, tmp_path,
                                        trained_dldpp):
    """Every iteration trains in its stage on the bank of the right
    round, and a second run of the same config ends exactly where the
    session's ``trained_dldpp`` ends."""
    cfg = pipeline_cfg(tmp_path, 'rounds_again')
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=100, by_epoch=False)
    runner = Runner.from_cfg(cfg)
    probe = _StageProbe()
    runner.register_hook(probe)
    runner.train()
    expected_stage = [s['name'] for s in cfg.model.stages
                      for _ in range(s['iters'])]
    assert [r[1] for r in probe.records] == expected_stage
    # rounds at the first iteration of each self-training stage and every
    # 2 iterations (interval) within it
    assert [r[2] for r in probe.records[:-1]] == [
        None, None, 2, 2, 4, 5, 5, 7, 7]
    assert probe.records[-1][2] == 10  # the final round
    rounds = [f for f in os.listdir(osp.join(tmp_path, 'pseudo_labels'))
              if f.endswith('.npz')]
    assert len(rounds) == 6
    full = trained_dldpp['runner'].model.state_dict()
    for k, v in runner.model.state_dict().items():
        torch.testing.assert_close(v, full[k], rtol=0, atol=0,
                                   equal_nan=True, msg=k)


def test_bank_buffers_round_trip():
    g = torch.Generator().manual_seed(0)
    bank = PseudoLabelBank(
        keypoints=torch.rand(3, 4, 2, generator=g),
        valid=torch.rand(3, 4, generator=g) > 0.3,
        labels=torch.arange(4).repeat(3, 1),
        pose_labels=torch.zeros(3, dtype=torch.long),
        round=5, iteration=17)
    bufs = bank.to_buffers()
    assert all(isinstance(v, torch.Tensor) for v in bufs.values())
    back = PseudoLabelBank.from_buffers(bufs)
    assert back.codes is None and (back.round, back.iteration) == (5, 17)
    for f in ('keypoints', 'valid', 'labels', 'pose_labels'):
        assert torch.equal(getattr(back, f), getattr(bank, f))
    assert back.anchors is None
    assert PseudoLabelBank.from_buffers(
        PseudoLabelBank.empty_buffers()) is None
    assert PseudoLabelBank.from_buffers({}) is None
    # the anchors of a peak round travel with the bank (and so with every
    # checkpoint); a state dict written before them reads as no anchors
    bank.anchors = torch.rand(3, 4, 2, generator=g)
    bufs = bank.to_buffers()
    assert torch.equal(PseudoLabelBank.from_buffers(bufs).anchors,
                       bank.anchors)
    assert torch.equal(
        PseudoLabelBank.from_state_dict(bank.state_dict()).anchors,
        bank.anchors)
    del bufs['anchors']
    assert PseudoLabelBank.from_buffers(bufs).anchors is None
    with pytest.raises(ValueError, match='anchors must be'):
        PseudoLabelBank(keypoints=bank.keypoints, valid=bank.valid,
                        labels=bank.labels, pose_labels=bank.pose_labels,
                        anchors=bank.anchors[:2])


def test_model_reads_the_bank_round_without_reading_its_buffers():
    """The model keeps host copies of the bank's round and iteration (a
    CUDA buffer read every iteration would wait for the device); loading a
    state dict refreshes them from the loaded buffers."""
    from mmengine.config import Config

    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile('configs/dldpp_face_world_cpu.py')
    model, other = MODELS.build(cfg.model), MODELS.build(cfg.model)

    def bank(rnd, it):
        return PseudoLabelBank(
            keypoints=torch.zeros(2, 10, 2), valid=torch.ones(2, 10).bool(),
            labels=torch.arange(10).repeat(2, 1),
            pose_labels=torch.zeros(2, dtype=torch.long),
            round=rnd, iteration=it)

    model.set_pseudo_labels(bank(5, 17))
    # a buffer that cannot be read: the property must not read it
    model.uld_pl_round = torch.empty((), dtype=torch.long, device='meta')
    model.uld_pl_iteration = torch.empty((), dtype=torch.long, device='meta')
    got = model.pseudo_labels
    assert (got.round, got.iteration) == (5, 17)
    model.uld_pl_round = torch.zeros((), dtype=torch.long)
    model.uld_pl_iteration = torch.zeros((), dtype=torch.long)
    other.set_pseudo_labels(bank(2, 9))
    model.load_state_dict(other.state_dict())
    got = model.pseudo_labels
    assert (got.round, got.iteration) == (2, 9)
    model.set_pseudo_labels(None)
    assert model.pseudo_labels is None
