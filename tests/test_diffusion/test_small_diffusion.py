# Copyright (c) mmuld contributors. All rights reserved.
"""The small diffusion trainer: saves a folder SD's loader reads, resumes
bit-exactly, refuses what would lose work, and learns features that find
known keypoints where random weights do not."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mmuld.datasets.synthetic_common import split_rng
from mmuld.datasets.synthetic_faces import FaceWorldConfig, render_face
from mmuld.diffusion import SmallDiffusionConfig, SmallDiffusionTrainer
from mmuld.diffusion.probe import keypoint_probe_error, mean_position_error
from mmuld.models.backbones import StableDiffusionBackbone

UNET_WEIGHTS = 'unet/diffusion_pytorch_model.safetensors'


def _faces(folder, n, size=32, seed=0):
    """Write ``n`` drawn faces; return their keypoints in [0, 1]."""
    cfg = FaceWorldConfig()
    kpts = []
    for i in range(n):
        img, pts, _ = render_face(split_rng(seed, 'train', i), cfg)
        kpts.append(pts / img.shape[0])
        cv2.imwrite(osp.join(folder, f'{i:03d}.png'),
                    cv2.resize(img, (size, size),
                               interpolation=cv2.INTER_AREA))
    return torch.tensor(np.stack(kpts), dtype=torch.float32)


def _cfg(**kw):
    base = dict(
        size=32,
        steps=4,
        vae_steps=4,
        batch_size=4,
        vae_batch_size=4,
        vae_channels=(8, 16),
        unet_channels=(16, 32),
        cross_attention_dim=32,
        warmup=2,
        save_every=2,
        val_every=4,
        num_samples=2,
        sample_steps=2)
    base.update(kw)
    return SmallDiffusionConfig(**base)


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp('faces')
    _faces(str(folder), 8)
    return str(folder)


def test_saved_folder_loads_in_the_sd_backbone(image_dir, tmp_path):
    out = str(tmp_path / 'sd')
    trainer = SmallDiffusionTrainer(image_dir, out, _cfg(), progress=False)
    info = trainer.run()
    assert info['images'] == 8 and info['held_out'] == 2
    assert info['kept'] in ('raw', 'ema')
    for name in ('samples.png', 'reconstructions.png',
                 'training_info.json'):
        assert osp.isfile(osp.join(out, name))
    backbone = StableDiffusionBackbone(
        pretrained=out, agg_channels=8, out_stride=4, timesteps=(50, 250))
    # the weights the backbone runs are the ones trained and kept
    saved = load_file(osp.join(out, UNET_WEIGHTS))
    for name, p in backbone.unet.state_dict().items():
        assert torch.equal(p, saved[name]), name
    for name, p in trainer.unet.state_dict().items():
        assert torch.equal(p, saved[name]), name
    assert backbone.vae.config.scaling_factor == pytest.approx(
        info['scaling_factor'])
    assert info['scaling_factor'] != pytest.approx(0.18215)
    assert backbone.vae_scale_factor == 2
    feats = backbone(torch.rand(2, 3, 32, 32) * 2 - 1)[0]
    assert feats.shape == (2, 8, 8, 8) and torch.isfinite(feats).all()


def test_resume_is_bit_exact_and_work_is_never_overwritten(
        image_dir, tmp_path):
    straight = str(tmp_path / 'straight')
    SmallDiffusionTrainer(
        image_dir, straight, _cfg(steps=6), progress=False).run()
    split = str(tmp_path / 'split')
    SmallDiffusionTrainer(
        image_dir, split, _cfg(steps=2), progress=False).run()
    with pytest.raises(FileExistsError, match='--resume'):
        SmallDiffusionTrainer(
            image_dir, split, _cfg(steps=6), progress=False).run()
    with pytest.raises(ValueError, match='batch_size'):
        SmallDiffusionTrainer(
            image_dir, split, _cfg(steps=6, batch_size=2),
            progress=False).run(resume=True)
    SmallDiffusionTrainer(
        image_dir, split, _cfg(steps=6), progress=False).run(resume=True)
    a = load_file(osp.join(straight, UNET_WEIGHTS))
    b = load_file(osp.join(split, UNET_WEIGHTS))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with open(osp.join(split, 'training_info.json')) as f:
        log = json.load(f)['log']
    with open(osp.join(straight, 'training_info.json')) as f:
        assert json.load(f)['log'] == log


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        SmallDiffusionTrainer(
            str(tmp_path / 'nowhere'), str(tmp_path / 'o'), _cfg())
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='No images'):
        SmallDiffusionTrainer(str(empty), str(tmp_path / 'o'), _cfg())
    with pytest.raises(ValueError, match='size'):
        SmallDiffusionTrainer(
            str(empty), str(tmp_path / 'o'), _cfg(size=30))


class _KnownFeatures(torch.nn.Module):
    """A stand-in backbone whose one layer marks the keypoints' cells
    (``exact``) or carries no information at all."""

    def __init__(self, kpts, exact):
        super().__init__()
        self.kpts, self.exact = kpts, exact

    def extract_features(self, images):
        n, k = len(images), self.kpts.shape[1]
        f = torch.full((n, 1, k, 16, 16), 1e-3)
        if self.exact:
            idx = (self.kpts[:n] * 16).long().clamp(0, 15)
            for i in range(n):
                for j in range(k):
                    f[i, 0, j, idx[i, j, 1], idx[i, j, 0]] = 1.0
        return [f]


def test_keypoint_probe_on_known_answers():
    gen = torch.Generator().manual_seed(0)
    kpts = (torch.randint(2, 14, (12, 5, 2), generator=gen) + 0.5) / 16
    images = torch.zeros(12, 3, 64, 64)
    exact = keypoint_probe_error(
        _KnownFeatures(kpts, True), images[:8], kpts[:8], images[:4],
        kpts[:4])
    blind = keypoint_probe_error(
        _KnownFeatures(kpts, False), images[:8], kpts[:8], images[:4],
        kpts[:4])
    assert exact == pytest.approx(0.0, abs=1e-6)
    assert blind > 0.2


def test_mean_position_baseline_on_known_answers():
    ref = torch.tensor([[[0.2, 0.2]], [[0.4, 0.6]]])  # mean (0.3, 0.4)
    # 0, 0.5 and 0 away from the reference mean
    query = torch.tensor([[[0.3, 0.4]], [[0.6, 0.8]], [[0.3, 0.4]]])
    assert mean_position_error(ref, query) == pytest.approx(0.5 / 3)


def _triangles(folder, n, seed, size=32):
    """Write ``n`` light triangles on dark backgrounds (random colours,
    position, size and a +-30 deg turn); return their corners in [0, 1].

    The triangle goes anywhere in the image, so a keypoint's mean position
    is a poor answer (about 0.15 of the side) that features must beat.
    """
    rng = np.random.default_rng(seed)
    shape = np.array([[0.0, -1.0], [0.8, 0.7], [-0.5, 0.7]])  # apex first
    big = size * 4  # drawn at 4x, then area-resized (anti-aliased)
    kpts = []
    for i in range(n):
        img = np.empty((big, big, 3), np.uint8)
        img[:] = rng.integers(0, 90, 3)
        side = rng.uniform(0.35, 0.5) * big
        centre = rng.uniform(0.7 * side, big - 0.7 * side, 2)
        a = rng.uniform(-np.pi / 6, np.pi / 6)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        pts = shape * side / 1.5 @ rot.T + centre
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)],
                     [int(v) for v in rng.integers(160, 256, 3)],
                     cv2.LINE_AA, shift=4)
        cv2.imwrite(osp.join(folder, f'{i:03d}.png'),
                    cv2.resize(img, (size, size),
                               interpolation=cv2.INTER_AREA))
        kpts.append(pts / big)
    return torch.tensor(np.stack(kpts), dtype=torch.float32)


def test_trained_features_find_keypoints_that_random_ones_miss(tmp_path):
    """A known-answer probe (about 30 s on 2 cores): nearest-feature
    correspondence of a triangle's three corners, from 48 training images
    to 24 new ones, through ``StableDiffusionBackbone``.

    The trained model finds the corners at under half the error of their
    mean position; the same architecture after one step of each phase
    (random weights, its latents scaled to unit spread by the same rule)
    does no better than that mean.
    """
    from mmuld.diffusion.images import list_images, load_images
    train_dir, query_dir = tmp_path / 'train', tmp_path / 'query'
    train_dir.mkdir()
    query_dir.mkdir()
    ref_kpts = _triangles(str(train_dir), 48, seed=0)
    query_kpts = _triangles(str(query_dir), 24, seed=1)
    ref = load_images(list_images(str(train_dir)), 32)[0]
    query = load_images(list_images(str(query_dir)), 32)[0]
    baseline = mean_position_error(ref_kpts, query_kpts)
    errors = {}
    for name, steps, vae_steps in (('trained', 150, 100), ('random', 1, 1)):
        out = str(tmp_path / name)
        cfg = _cfg(steps=steps, vae_steps=vae_steps, batch_size=16,
                   vae_batch_size=16, warmup=20, save_every=1000)
        SmallDiffusionTrainer(str(train_dir), out, cfg, progress=False).run()
        backbone = StableDiffusionBackbone(
            pretrained=out, agg_channels=8, out_stride=4)
        errors[name] = keypoint_probe_error(
            backbone, ref, ref_kpts, query, query_kpts, size=8)
    assert 0.12 < baseline < 0.2, baseline
    assert errors['trained'] < 0.6 * baseline, (errors, baseline)
    assert errors['random'] > 0.9 * baseline, (errors, baseline)


def _denoising_mse(trainer, image_dir):
    """The UNet's epsilon-prediction error on the images, computed here
    with diffusers' scheduler at fixed noise and timesteps."""
    from mmuld.diffusion.images import list_images, load_images
    images, _ = load_images(list_images(image_dir), trainer.cfg.size)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        z = trainer.vae.encode(images).latent_dist.mean
        z = z * trainer.vae.config.scaling_factor
        errs = []
        for t_val in (100, 400, 700):
            noise = torch.randn(z.shape, generator=gen)
            t = torch.full((len(z), ), t_val, dtype=torch.long)
            noisy = trainer.scheduler.add_noise(z, noise, t)
            pred = trainer.unet(
                noisy, t, encoder_hidden_states=trainer.text.expand(
                    len(z), -1, -1)).sample
            errs.append(torch.nn.functional.mse_loss(pred, noise).item())
    return float(np.mean(errs))


def test_training_learns_to_denoise(image_dir, tmp_path):
    """60 steps predict the noise far better than one step does."""
    one = SmallDiffusionTrainer(image_dir, str(tmp_path / 'one'),
                                _cfg(steps=1, vae_steps=20), progress=False)
    one.run()
    trained = SmallDiffusionTrainer(
        image_dir, str(tmp_path / 'sixty'), _cfg(steps=60, vae_steps=20),
        progress=False)
    trained.run()
    before = _denoising_mse(one, image_dir)
    after = _denoising_mse(trained, image_dir)
    assert after < 0.6 * before and after < 0.7, (before, after)
