# Copyright (c) mmuld contributors. All rights reserved.
"""ULDTrainLoop in a real run: frozen modules, per-stage learning rates."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

GROUPS = {
    'aggregator': ('backbone.aggregator.', ),
    'detector_head': ('detector_head.', ),
    'descriptor_head': ('descriptor_head.', ),
    'vae_encoder': ('pose_vae.encoder.', 'pose_vae.fc_mu.',
                    'pose_vae.fc_logvar.'),
    'vae_decoder': ('pose_vae.fc_decode.', 'pose_vae.decoder.'),
}
VAE_DEC = ['pose_vae.decoder', 'pose_vae.fc_decode']
# every stage freezes a module that one of its losses reaches, and uses a
# learning rate of its own (the optimizer starts from yet another one)
STAGES = [
    dict(name='bootstrap', iters=2, lr=1e-3,
         frozen=['descriptor_head', 'pose_vae']),
    dict(name='duld', iters=2, lr=2e-3, frozen=['detector_head', 'pose_vae']),
    dict(name='proxy', iters=1, lr=3e-3, frozen=['descriptor_head'] + VAE_DEC),
    dict(name='dldpp', iters=2, lr=4e-3,
         frozen=['descriptor_head', 'backbone.aggregator'] + VAE_DEC),
]
TRAINED = {
    'bootstrap': {'aggregator', 'detector_head'},
    'duld': {'aggregator', 'descriptor_head'},
    'proxy': {'aggregator', 'detector_head', 'vae_encoder'},
    'dldpp': {'detector_head', 'vae_encoder'},
}
FROZEN = {
    'bootstrap': {'descriptor_head', 'vae_encoder', 'vae_decoder'},
    'duld': {'detector_head', 'vae_encoder', 'vae_decoder'},
    'proxy': {'descriptor_head', 'vae_decoder'},
    'dldpp': {'descriptor_head', 'aggregator', 'vae_decoder'},
}
INITIAL_LR = 0.05


def _group(name):
    for g, prefixes in GROUPS.items():
        if name.startswith(prefixes):
            return g
    raise AssertionError(f'parameter {name} belongs to no group')


class _Probe(Hook):
    """Records, per iteration, what the optimizer step did."""

    priority = 'LOWEST'

    def __init__(self):
        self.records = []

    def before_train(self, runner):
        opt = runner.optim_wrapper.optimizer
        orig = opt.step
        names = {p: n for n, p in runner.model.named_parameters()}

        def step(*args, **kwargs):
            snap = [(p, p.detach().clone(), p.grad.detach().clone(),
                     group['lr']) for group in opt.param_groups
                    for p in group['params'] if p.grad is not None]
            out = orig(*args, **kwargs)
            # plain SGD: every update is exactly -lr * (clipped) grad
            err = max(float((p.detach() - (old - lr * g)).abs().max())
                      for p, old, g, lr in snap)
            self.step_info = dict(
                lrs={lr for *_, lr in snap}, err=err,
                stepped={_group(names[p]) for p, *_ in snap})
            return out

        opt.step = step

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before = {
            n: p.detach().clone()
            for n, p in runner.model.named_parameters()
        }
        self.step_info = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        model = runner.model
        changed, grad_off = set(), set()
        for n, p in model.named_parameters():
            if not torch.equal(p.detach(), self.before[n]):
                changed.add(_group(n))
            if not p.requires_grad:
                grad_off.add(_group(n))
        self.records.append(
            dict(iter=runner.iter, stage=model.stage, changed=changed,
                 grad_off=grad_off,
                 group_lrs={g['lr'] for g in
                            runner.optim_wrapper.param_groups},
                 step=self.step_info))


@pytest.fixture(scope='module')
def records(tmp_path_factory, pipeline_cfg):
    work = tmp_path_factory.mktemp('stage_hook')
    cfg = pipeline_cfg(work, 'stage_hook', stages=STAGES)
    cfg.optim_wrapper = dict(
        optimizer=dict(type='SGD', lr=INITIAL_LR, momentum=0.0,
                       weight_decay=0.0),
        clip_grad=dict(max_norm=10.0))
    cfg.train_cfg.clustering.interval = 100  # one round per stage
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=100, by_epoch=False)
    runner = Runner.from_cfg(cfg)
    probe = _Probe()
    runner.register_hook(probe)
    runner.train()
    return probe.records


def test_every_iteration_runs_in_its_stage(records):
    expected = [s['name'] for s in STAGES for _ in range(s['iters'])]
    assert [r['stage'] for r in records] == expected


@pytest.mark.parametrize('stage', [s['name'] for s in STAGES])
def test_stage_lr_is_applied(records, stage):
    lr = next(s['lr'] for s in STAGES if s['name'] == stage)
    recs = [r for r in records if r['stage'] == stage]
    assert recs
    for r in recs:
        assert r['group_lrs'] == {lr}, r
        step = r['step']
        assert step is not None, 'no optimizer step in this iteration'
        assert step['lrs'] == {lr}
        assert step['err'] < 1e-6, step


@pytest.mark.parametrize('stage', [s['name'] for s in STAGES])
def test_frozen_modules_do_not_move_trained_ones_do(records, stage):
    for r in (r for r in records if r['stage'] == stage):
        assert r['changed'] == TRAINED[stage], r
        assert r['grad_off'] == FROZEN[stage], r
        assert not (r['step']['stepped'] & FROZEN[stage]), r
