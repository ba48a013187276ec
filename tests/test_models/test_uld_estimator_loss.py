# Copyright (c) mmuld contributors. All rights reserved.
"""``ULDEstimator.loss`` of every stage on the tiny SD model.

Each loss term is back-propagated alone and the parameter groups it reaches
are compared with the method's intended routing; the values are compared
with oracles built from the pieces (an independently rendered pseudo-label
heatmap, the bank's pose labels, the predicted heatmap as VAE input).
"""
import dataclasses
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.structures import PoseDataSample

from mmuld.clustering import PseudoLabelBank
from mmuld.models.pose_estimators.stages import StageSchedule
from mmuld.models.pose_estimators.uld_cfg import ULDTrainCfg
from mmuld.models.utils.affine import warp_images
from mmuld.registry import MODELS
from mmuld.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py')
N_IMG, SIZE, STRIDE, MAP = 4, 64, 4, 16
POSE = torch.tensor([0, 1, 0, 1])

# parameter groups, by name prefix
GROUPS = {
    'aggregator': ('backbone.aggregator.', ),
    'detector_head': ('detector_head.', ),
    'descriptor_head': ('descriptor_head.', ),
    'vae_encoder': ('pose_vae.encoder.', ),
    'vae_mu': ('pose_vae.fc_mu.', ),
    'vae_logvar': ('pose_vae.fc_logvar.', ),
    'vae_decoder': ('pose_vae.fc_decode.', 'pose_vae.decoder.'),
}
DETECTOR = {'aggregator', 'detector_head'}
ENCODER = {'vae_encoder', 'vae_mu', 'vae_logvar'}


def expected_reach(term: str, train_cfg: dict) -> set:
    """Parameter groups loss term ``term`` must reach (and no others).

    Choices of the method read from ``train_cfg``:

    * ``detach_vae_input``: the ELBO (``loss_recon``, ``loss_kl``) reaches
      the detector and the aggregator only when it is False.
    * Eq. 3 (``loss_latent``) trains the encoder's mean branch and, through
      the encoded heatmap, the detector and the aggregator.
    """
    vae_to_detector = set() if train_cfg.get('detach_vae_input',
                                             True) else DETECTOR
    table = {
        'loss_boot_desc': {'aggregator', 'descriptor_head'},
        'loss_boot_kpt': {'aggregator', 'detector_head'},
        'loss_heatmap': DETECTOR,
        'loss_descriptor': {'aggregator', 'descriptor_head'},
        'loss_correspondence': {'aggregator', 'descriptor_head'},
        'loss_recon': ENCODER | {'vae_decoder'} | vae_to_detector,
        'loss_kl': ENCODER | vae_to_detector,
        'loss_latent': {'vae_encoder', 'vae_mu'} | DETECTOR,
    }
    if term not in table:
        raise AssertionError(
            f'loss term {term!r} has no routing expectation: add it to '
            'expected_reach()')
    return table[term]


def required_terms(stage: str, train_cfg: dict) -> set:
    """Loss terms a stage must return."""
    if stage == 'bootstrap':
        return {'loss_boot_desc', 'loss_boot_kpt'}
    if stage == 'duld' and train_cfg.get('correspondence_weight'):
        return {'loss_heatmap', 'loss_descriptor', 'loss_correspondence'}
    if stage == 'duld' or (stage == 'dldpp' and train_cfg.get(
            'dldpp_objective') == 'duld'):
        return {'loss_heatmap', 'loss_descriptor'}
    if stage == 'proxy' or train_cfg.get('dldpp_objective') == 'elbo':
        return {'loss_heatmap', 'loss_recon', 'loss_kl'}
    return {'loss_heatmap', 'loss_latent'}


def _group(name: str) -> str:
    for group, prefixes in GROUPS.items():
        if name.startswith(prefixes):
            return group
    raise AssertionError(f'parameter {name} belongs to no group of the test')


@pytest.fixture(scope='module')
def model(tiny_sd_dir):
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.pretrained = tiny_sd_dir
    torch.manual_seed(0)
    m = MODELS.build(cfg.model)
    m.train()
    m.base_train_cfg = dataclasses.asdict(m.train_cfg)
    return m


def _use(model, stage, objective=None, **train_cfg):
    model.train_cfg = ULDTrainCfg.from_cfg(
        dict(model.base_train_cfg, **train_cfg), 'train_cfg')
    table = dict(name=stage, iters=1)
    if objective:
        table['objective'] = objective
    model.set_stage(StageSchedule([table])[0])
    model.set_pseudo_labels(_bank(two_stage=stage == 'dldpp'))
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    model.zero_grad(set_to_none=True)


def _cells(seed=0, k=10):
    """(N, K, 2) distinct map cells per image, away from the border."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randperm(144, generator=g)[:k]
                       for _ in range(N_IMG)])
    return torch.stack([idx % 12 + 2, idx // 12 + 2], -1)


def _bank(two_stage=False, k=10):
    cells = _cells(k=k)
    kpts = (cells.float() + 0.5) * STRIDE - 0.5  # cell centres, input px
    valid = torch.ones(N_IMG, k, dtype=torch.bool)
    valid[3, 9] = False
    slot = torch.arange(k).expand(N_IMG, k)
    labels = POSE[:, None] * k + slot if two_stage else slot.clone()
    labels = labels.masked_fill(~valid, -1)
    codes = torch.randn(N_IMG, 64, generator=torch.Generator().manual_seed(1))
    return PseudoLabelBank(keypoints=kpts, valid=valid, labels=labels,
                           pose_labels=POSE.clone(), codes=codes)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    # smooth random images in [-1, 1]
    x = torch.rand(N_IMG, 3, SIZE // 8, SIZE // 8, generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE),
                                        mode='bilinear')
    samples = [PoseDataSample(metainfo=dict(sample_idx=i))
               for i in range(N_IMG)]
    return x, samples


def _oracle_target(bank, sigma):
    """Pseudo-label heatmap drawn independently with numpy."""
    out = np.zeros((N_IMG, 1, MAP, MAP))
    vs, us = np.mgrid[0:MAP, 0:MAP]
    for i in range(N_IMG):
        for (x, y), v in zip(bank.keypoints[i].numpy(),
                             bank.valid[i].numpy()):
            if not v:
                continue
            mx, my = (x + 0.5) / STRIDE - 0.5, (y + 0.5) / STRIDE - 0.5
            g = np.exp(-((us - mx)**2 + (vs - my)**2) / (2 * sigma**2))
            out[i, 0] = np.maximum(out[i, 0], g)
    return torch.from_numpy(out).float()


def _reach(model, loss):
    """Groups with a non-zero gradient, and the (group, name) of every
    parameter without one."""
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    hit, dead = set(), set()
    for name, p in model.named_parameters():
        g = p.grad is not None and bool(p.grad.abs().sum() > 0)
        (hit if g else dead).add((_group(name), name))
    return {g for g, _ in hit}, dead


STAGE_CFGS = [
    ('bootstrap', {}),
    ('duld', {}),
    ('duld', dict(correspondence_weight=0.5)),
    ('proxy', dict(detach_vae_input=True)),
    ('proxy', dict(detach_vae_input=False)),
    ('dldpp', {}),
    ('dldpp', dict(objective='elbo', detach_vae_input=False)),
]


@pytest.mark.parametrize('stage,extra', STAGE_CFGS)
def test_each_loss_reaches_its_modules_only(model, stage, extra):
    _use(model, stage, **extra)
    x, samples = _batch()
    torch.manual_seed(0)
    losses = model.loss(x, samples)
    cfg = dict(dataclasses.asdict(model.train_cfg),
               dldpp_objective=model.objective)
    terms = {k: v for k, v in losses.items() if k.startswith('loss')}
    assert required_terms(stage, cfg) <= set(terms), sorted(losses)
    for term, value in terms.items():
        assert value.dim() == 0 and torch.isfinite(value), (term, value)
        assert value.item() > 0, f'{stage}: {term} is {value.item()}'
        reached, dead = _reach(model, value)
        expected = expected_reach(term, cfg)
        assert reached == expected, (
            f'{stage} {extra}: {term} reaches {sorted(reached)}, expected '
            f'{sorted(expected)}')
        # every weight of a reached group gets a gradient (a module fed a
        # constant input would leave its weights without one)
        dead_weights = [n for g, n in dead
                        if g in expected and n.endswith('weight')]
        assert not dead_weights, (term, dead_weights)


def test_self_training_losses_match_oracles(model):
    """loss_heatmap against an independently drawn target (peaks at
    keypoint / stride); the descriptor loss on the bank's labels."""
    _use(model, 'duld', augment=False)
    x, samples = _batch()
    bank = model.pseudo_labels
    seen = {}
    orig = model.detector_head.loss_module.forward

    def spy(logits, target, *a, **kw):
        seen['target'] = target.detach().clone()
        seen['logits'] = logits.detach().clone()
        return orig(logits, target, *a, **kw)

    model.detector_head.loss_module.forward = spy
    try:
        losses = model.loss(x, samples)
    finally:
        del model.detector_head.loss_module.forward
    sigma = model.train_cfg.get('sigma', 1.0)
    target = _oracle_target(bank, sigma)
    torch.testing.assert_close(seen['target'], target, atol=1e-5, rtol=0)
    cells = _cells()
    for i in range(N_IMG):
        for (u, v), ok in zip(cells[i].tolist(), bank.valid[i].tolist()):
            assert (seen['target'][i, 0, v, u] == 1.0) == ok
    expected = model.detector_head.loss_module(seen['logits'], target)
    torch.testing.assert_close(losses['loss_heatmap'].detach(), expected)
    # descriptor loss = contrastive loss of the sampled descriptors with
    # the bank's labels (not any other labelling)
    from mmuld.models.utils.keypoint_ops import sample_descriptors
    with torch.no_grad():
        desc = sample_descriptors(
            model.descriptor_head(model.extract_feat(x)), bank.keypoints,
            STRIDE)
        valid = bank.valid.reshape(-1)
        flat = desc.reshape(-1, desc.shape[-1])[valid]
        loss_desc = model.descriptor_head.loss_module
        good = loss_desc(flat, bank.labels.reshape(-1)[valid])
        wrong = loss_desc(flat, torch.zeros_like(
            bank.labels.reshape(-1)[valid]))
    torch.testing.assert_close(losses['loss_descriptor'].detach(), good)
    assert not torch.isclose(good, wrong)


def test_correspondence_term_is_the_weighted_bootstrap_descriptor_loss(
        model):
    """train_cfg.correspondence_weight w adds w times the bootstrapping
    descriptor NLL (of a random warp of the batch) to D-ULD; w = 0 adds
    nothing."""
    x, samples = _batch()
    _use(model, 'duld', correspondence_weight=0.0)
    assert 'loss_correspondence' not in model.loss(x, samples)
    _use(model, 'duld', correspondence_weight=0.5, augment=False)
    model.eval()  # the same BatchNorm statistics in both passes
    torch.manual_seed(3)
    losses = model.loss(x, samples)
    torch.manual_seed(3)
    model._self_training(x, samples)  # the same random draws, in order
    boot = model._loss_bootstrap(x)
    torch.testing.assert_close(losses['loss_correspondence'].detach(),
                               0.5 * boot['loss_boot_desc'].detach())
    assert losses['loss_correspondence'] > 0


def test_negative_correspondence_weight_is_refused(tiny_sd_dir):
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.pretrained = tiny_sd_dir
    cfg.model.train_cfg = dict(correspondence_weight=-1.0)
    with pytest.raises(ValueError, match='correspondence_weight'):
        MODELS.build(cfg.model)


def test_proxy_elbo_reconstructs_target_from_predicted_heatmap(model):
    """ELBO of the VAE fed sigmoid(H), reconstructing G (VAE in eval mode,
    so that phi = mu and the oracle is deterministic)."""
    _use(model, 'proxy', detach_vae_input=False, augment=False)
    model.pose_vae.eval()
    x, samples = _batch()
    losses = model.loss(x, samples)
    target = _oracle_target(model.pseudo_labels,
                            model.train_cfg.get('sigma', 1.0))
    with torch.no_grad():
        heat = model.detector_head(model.extract_feat(x)).sigmoid()
        out = model.pose_vae(heat)
        elbo = model.pose_vae.loss_elbo
        exp = elbo(out['recon'], target, out['mu'], out['logvar'])
        zeros = model.pose_vae(torch.zeros_like(heat))
        other = elbo(zeros['recon'], target, zeros['mu'], zeros['logvar'])
    for key in ('loss_recon', 'loss_kl'):
        torch.testing.assert_close(losses[key].detach(), exp[key])
    assert not torch.isclose(exp['loss_kl'], other['loss_kl'])


def test_dldpp_latent_loss_uses_bank_pose_labels(model):
    """Eq. 3 on the codes of the predicted heatmap with the labels u."""
    _use(model, 'dldpp', augment=False)
    x, samples = _batch()
    losses = model.loss(x, samples)
    with torch.no_grad():
        heat = model.detector_head(model.extract_feat(x)).sigmoid()
        mu = model.pose_vae.encode(heat)[0]
        exp = model.pose_vae.loss_latent(mu, POSE)
        const = model.pose_vae.loss_latent(mu, torch.zeros_like(POSE))
    torch.testing.assert_close(losses['loss_latent'].detach(), exp)
    assert not torch.isclose(exp, const)


@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_bootstrap_pairs_use_the_configured_warps(model, flip_prob):
    """The second view is the input warped by the (non-trivial) matrices
    handed to the loss; flips follow ``train_cfg.flip_prob``."""
    max_rot = 30.0
    _use(model, 'bootstrap', flip_prob=flip_prob, max_rotation=max_rot)
    x, samples = _batch()
    seen = {}
    orig_feat, orig_loss = model.extract_feat, model.loss_bootstrap.forward

    def feat_spy(inputs):
        seen['inputs'] = inputs.detach().clone()
        return orig_feat(inputs)

    def loss_spy(*args):
        seen['matrices'] = args[4].detach().clone()
        seen['stride'] = args[5]
        return orig_loss(*args)

    model.extract_feat = feat_spy
    model.loss_bootstrap.forward = loss_spy
    try:
        torch.manual_seed(3)
        model.loss(x, samples)
    finally:
        del model.extract_feat
        del model.loss_bootstrap.forward
    mats = seen['matrices']
    assert mats.shape == (N_IMG, 2, 3) and seen['stride'] == STRIDE
    det = torch.det(mats[:, :, :2])
    assert bool((det < 0).all()) if flip_prob == 1.0 else bool(
        (det > 0).all())
    # rotation angle of every pair within the bound, not all zero
    lin = mats[:, :, :2].clone()
    if flip_prob == 1.0:
        lin[:, :, 0] = -lin[:, :, 0]
    angles = torch.rad2deg(torch.atan2(lin[:, 1, 0], lin[:, 0, 0])).abs()
    assert bool((angles <= max_rot + 1e-3).all())
    assert angles.max() > 1.0, angles
    both = seen['inputs']
    torch.testing.assert_close(both[:N_IMG], x)
    torch.testing.assert_close(both[N_IMG:], warp_images(x, mats))
    assert not torch.allclose(both[N_IMG:], x, atol=1e-2)
