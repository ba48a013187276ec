# Copyright (c) mmuld contributors. All rights reserved.
import pytest
import torch

from mmuld.models.losses import ELBOLoss
from mmuld.models.necks import PoseVAENeck
from mmuld.models.utils import render_gaussian_heatmap
from mmuld.registry import MODELS


def test_vae_shapes_and_registry():
    neck = MODELS.build(
        dict(type='PoseVAENeck', heatmap_size=(16, 16), base_channels=8))
    assert isinstance(neck, PoseVAENeck)
    neck.init_weights()
    h = torch.rand(3, 1, 16, 16)
    out = neck(h)
    assert out['mu'].shape == (3, 64) and out['logvar'].shape == (3, 64)
    assert out['phi'].shape == (3, 64)
    assert out['recon'].shape == (3, 1, 16, 16)
    mu, logvar = neck.encode(h)
    assert mu.shape == (3, 64)
    assert neck.decode(mu).shape == (3, 1, 16, 16)


def test_vae_non_divisible_size():
    neck = PoseVAENeck(heatmap_size=(30, 22), latent_dim=8, base_channels=4)
    out = neck(torch.rand(2, 1, 30, 22))
    assert out['recon'].shape == (2, 1, 30, 22)
    assert neck.enc_size == (4, 3)


def test_vae_eval_is_deterministic_train_is_stochastic():
    torch.manual_seed(0)
    neck = PoseVAENeck(heatmap_size=16, latent_dim=16, base_channels=4)
    h = torch.rand(2, 1, 16, 16)
    neck.train()
    out1, out2 = neck(h), neck(h)
    assert not torch.allclose(out1['phi'], out2['phi'])
    neck.eval()
    out1, out2 = neck(h), neck(h)
    assert torch.equal(out1['phi'], out1['mu'])
    assert torch.equal(out1['phi'], out2['phi'])
    assert torch.equal(out1['recon'], out2['recon'])


def test_vae_discard_decoder():
    neck = PoseVAENeck(heatmap_size=16, latent_dim=16, base_channels=4)
    full_state = neck.state_dict()
    n_full = sum(p.numel() for p in neck.parameters())
    neck.discard_decoder()
    assert not neck.with_decoder
    assert sum(p.numel() for p in neck.parameters()) < n_full
    out = neck(torch.rand(2, 1, 16, 16))
    assert out['recon'] is None and out['phi'].shape == (2, 16)
    with pytest.raises(RuntimeError, match='discarded'):
        neck.decode(out['phi'])
    # an encoder-only neck loads the encoder weights of the full model
    enc_only = PoseVAENeck(
        heatmap_size=16, latent_dim=16, base_channels=4, with_decoder=False)
    missing, unexpected = enc_only.load_state_dict(full_state, strict=False)
    assert missing == [] and all('decode' in k for k in unexpected)


def test_vae_bad_input():
    neck = PoseVAENeck(heatmap_size=16, latent_dim=16, base_channels=4)
    with pytest.raises(ValueError, match='expects heatmaps'):
        neck(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match='z must'):
        neck.decode(torch.rand(2, 3))
    with pytest.raises(ValueError, match='heatmap_size'):
        PoseVAENeck(heatmap_size=(0, 4))


def test_vae_learns_to_reconstruct():
    torch.manual_seed(0)
    neck = PoseVAENeck(heatmap_size=16, latent_dim=8, base_channels=8)
    loss_fn = ELBOLoss(kl_weight=0.01)
    kpts = torch.rand(4, 5, 2) * 15
    target = render_gaussian_heatmap(kpts, None, 16, stride=1, sigma=1.0)
    optim = torch.optim.Adam(neck.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        out = neck(target)
        loss = sum(loss_fn(out['recon'], target, out['mu'],
                           out['logvar']).values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_vae_reconstruction_follows_its_input():
    """After training, each heatmap is reconstructed nearer to itself than
    to the other heatmaps: the code carries the input (a VAE fed a constant
    can only learn the mean heatmap)."""
    torch.manual_seed(0)
    neck = PoseVAENeck(heatmap_size=16, latent_dim=8, base_channels=8)
    loss_fn = ELBOLoss(kl_weight=0.01)
    kpts = torch.tensor([[[3., 3.], [5., 12.]], [[12., 3.], [12., 12.]],
                         [[8., 8.], [3., 12.]], [[12., 8.], [8., 3.]]])
    target = render_gaussian_heatmap(kpts, None, 16, stride=1, sigma=1.5)
    optim = torch.optim.Adam(neck.parameters(), lr=1e-2)
    for _ in range(60):
        out = neck(target)
        loss = sum(loss_fn(out['recon'], target, out['mu'],
                           out['logvar']).values())
        optim.zero_grad()
        loss.backward()
        optim.step()
    neck.eval()
    with torch.no_grad():
        out = neck(target)
        recon = out['recon'].sigmoid()
    err = ((recon[:, None] - target[None])**2).flatten(2).sum(-1)  # (4, 4)
    assert torch.equal(err.argmin(1), torch.arange(4)), err
    # the peaks come back where the keypoints are
    for i in range(4):
        for x, y in kpts[i].long().tolist():
            assert recon[i, 0, y, x] > 0.5, (i, x, y)
    assert torch.cdist(out['mu'], out['mu']).triu(1).max() > 0
