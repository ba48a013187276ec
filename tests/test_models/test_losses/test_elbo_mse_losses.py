# Copyright (c) mmuld contributors. All rights reserved.
import math

import pytest
import torch

from mmuld.models.losses import ELBOLoss, HeatmapMSELoss
from mmuld.registry import MODELS


def test_elbo_hand_values_bce():
    loss_fn = MODELS.build(dict(type='ELBOLoss', kl_weight=1.0))
    assert isinstance(loss_fn, ELBOLoss)
    recon = torch.zeros(2, 1, 2, 2, requires_grad=True)
    target = torch.rand(2, 1, 2, 2)
    mu = torch.tensor([[1., 0.], [0., 0.]], requires_grad=True)
    logvar = torch.tensor([[0., math.log(2.)], [0., 0.]])
    losses = loss_fn(recon, target, mu, logvar)
    # BCE with logit 0 is log 2 for any target: 4 pixels summed, batch mean
    assert losses['loss_recon'].item() == pytest.approx(4 * math.log(2))
    # sample 0: -0.5 * [(1 + 0 - 1 - 1) + (1 + log2 - 0 - 2)]; sample 1: 0
    kl0 = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2) - 0 - 2))
    assert losses['loss_kl'].item() == pytest.approx(kl0 / 2)
    sum(losses.values()).backward()
    assert torch.isfinite(recon.grad).all() and torch.isfinite(mu.grad).all()


def test_elbo_mse_mean_and_weights():
    recon = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[0., 1.], [0.5, 0.25]]]])
    mu, logvar = torch.zeros(1, 3), torch.zeros(1, 3)
    losses = ELBOLoss(
        recon_type='mse', reduction='mean', recon_weight=2.0,
        kl_weight=0.1)(recon, target, mu, logvar)
    mse = (0.25 + 0.25 + 0 + 0.0625) / 4  # sigmoid(0) = 0.5
    assert losses['loss_recon'].item() == pytest.approx(2.0 * mse)
    assert losses['loss_kl'].item() == pytest.approx(0.0)
    raw = ELBOLoss(recon_type='mse', recon_sigmoid=False)(
        recon, target, mu, logvar)
    assert raw['loss_recon'].item() == pytest.approx(1 + 0.25 + 0.0625)


def test_elbo_errors_and_empty():
    loss_fn = ELBOLoss()
    with pytest.raises(ValueError, match='recon shape'):
        loss_fn(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3),
                torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match='mu and logvar'):
        loss_fn(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2),
                torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(ValueError, match='recon_type'):
        ELBOLoss(recon_type='l1')
    recon = torch.zeros(0, 1, 2, 2, requires_grad=True)
    losses = loss_fn(recon, torch.zeros(0, 1, 2, 2), torch.zeros(0, 2),
                     torch.zeros(0, 2))
    assert losses['loss_recon'].item() == 0 and \
        losses['loss_recon'].requires_grad


def test_heatmap_mse_loss():
    loss_fn = MODELS.build(dict(type='HeatmapMSELoss', loss_weight=2.0))
    assert isinstance(loss_fn, HeatmapMSELoss)
    logits = torch.zeros(2, 1, 3, 3, requires_grad=True)
    target = torch.zeros(2, 1, 3, 3)
    target[0, 0, 1, 1] = 1.0
    loss = loss_fn(logits, target)
    # sigmoid(0) = 0.5: 17 pixels with error 0.25 and one with 0.25 -> 0.25
    assert loss.item() == pytest.approx(2.0 * 0.25)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    raw = HeatmapMSELoss(use_sigmoid=False)(torch.ones(1, 1, 2, 2),
                                            torch.zeros(1, 1, 2, 2))
    assert raw.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match='does not match'):
        loss_fn(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3))


def test_heatmap_mse_loss_weights_and_mask():
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.ones(1, 2, 2, 2)
    weights = torch.tensor([[1.0, 0.0]])
    # sigmoid(0) = 0.5 -> error 0.25 everywhere; channel 1 weighted out
    loss = HeatmapMSELoss(use_target_weight=True)(logits, target, weights)
    assert loss.item() == pytest.approx(0.125)
    # weights are ignored unless use_target_weight
    loss = HeatmapMSELoss()(logits, target, weights)
    assert loss.item() == pytest.approx(0.25)
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1
    loss = HeatmapMSELoss()(logits, target, mask=mask)
    assert loss.item() == pytest.approx(0.25 / 4)


def test_heatmap_mse_depends_on_the_target():
    """sigmoid(log 4) = 0.8: hand values against targets 1, 0 and 0.5."""
    logits = torch.full((1, 1, 2, 2), math.log(4.0))
    target = torch.tensor([[[[1.0, 0.0], [0.5, 0.8]]]])
    loss = HeatmapMSELoss()(logits, target)
    expected = (0.2**2 + 0.8**2 + 0.3**2 + 0.0) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # the gradient pushes each pixel towards its own target
    logits.requires_grad_(True)
    HeatmapMSELoss()(logits, target).backward()
    g = logits.grad[0, 0]
    assert g[0, 0] < 0 and g[0, 1] > 0 and g[1, 0] > 0
    assert g[1, 1].abs() < 1e-7


def test_elbo_bce_depends_on_the_target():
    """Logit log 3 (p = 0.75): BCE is -log 0.75 against 1, -log 0.25
    against 0 and their mean against 0.5."""
    recon = torch.full((1, 1, 1, 3), math.log(3.0))
    target = torch.tensor([[[[1.0, 0.0, 0.5]]]])
    mu, logvar = torch.zeros(1, 2), torch.zeros(1, 2)
    losses = ELBOLoss()(recon, target, mu, logvar)
    bce = (-math.log(0.75) - math.log(0.25) -
           0.5 * (math.log(0.75) + math.log(0.25)))
    assert losses['loss_recon'].item() == pytest.approx(bce, rel=1e-5)
    assert losses['loss_kl'].item() == pytest.approx(0.0, abs=1e-7)
    # the minimum over the logits is at the target
    best = ELBOLoss()(torch.logit(target.clamp(1e-4, 1 - 1e-4)), target, mu,
                      logvar)['loss_recon']
    assert best.item() < losses['loss_recon'].item()
    mean = ELBOLoss(reduction='mean')(recon, target, mu, logvar)
    assert mean['loss_recon'].item() == pytest.approx(bce / 3, rel=1e-5)
