# Copyright (c) mmuld contributors. All rights reserved.
"""Random affine + photometric augmentation of a batch and its labels."""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .affine import random_affine_matrices, transform_points, warp_images

DEFAULT_AUGMENT = dict(
    max_rotation=15.0,
    scale_range=(0.9, 1.1),
    max_shift=0.05,
    brightness=0.2,
    contrast=0.2,
    saturation=0.2)


def augment_with_labels(inputs: Tensor,
                        keypoints: Tensor,
                        valid: Tensor,
                        max_rotation: float = 15.0,
                        scale_range: Optional[Sequence[float]] = (0.9, 1.1),
                        max_shift: float = 0.05,
                        brightness: float = 0.2,
                        contrast: float = 0.2,
                        saturation: float = 0.2,
                        generator: Optional[torch.Generator] = None
                        ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Warp a batch and its pseudo-labels by the same random affine map.

    Self-training (D-ULD, proxy task, D-ULD++) regresses the network's own
    pseudo-labels; without augmentation it sees identical crops every time.
    Each image gets a random rotation (no flip: a flip would swap the left
    and right landmarks that the labels tell apart), scale and shift about
    its centre, the pseudo-label keypoints are moved by the same matrix
    (those that leave the input become invalid), and a random brightness,
    contrast and saturation change is applied to the pixels. The uncovered
    border replicates the edge pixels, so no constant frame appears.

    Args:
        inputs (Tensor): ``(B, 3, H, W)`` normalised images.
        keypoints (Tensor): ``(B, N, 2)`` pseudo-labels in input pixels.
        valid (Tensor): ``(B, N)`` bool validity.
        max_rotation (float): Max rotation in degrees (+-).
        scale_range (Sequence[float], optional): Scale range.
        max_shift (float): Max shift, fraction of the side (+-, per axis).
        brightness (float): Max additive brightness change (in the
            normalised units of ``inputs``).
        contrast (float): Max relative contrast change.
        saturation (float): Max relative saturation change.
        generator (torch.Generator, optional): CPU RNG.

    Returns:
        tuple: warped images, warped keypoints, their validity and the
        ``(B, 2, 3)`` matrices (input pixel -> warped pixel).
    """
    B, C, H, W = inputs.shape
    dev, dtype = inputs.device, inputs.dtype

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(dev, dtype)

    m = random_affine_matrices(
        B, (H, W),
        max_rotation=max_rotation,
        flip_prob=0.0,
        scale_range=tuple(scale_range) if scale_range else None,
        generator=generator,
        device=dev,
        dtype=dtype)
    m = m.clone()
    m[:, :, 2] += (rand(B, 2) * 2 - 1) * max_shift * inputs.new_tensor(
        [W, H])
    imgs = warp_images(inputs, m, padding_mode='border')
    if C == 3 and saturation > 0:
        gray = imgs.mean(1, keepdim=True)
        s = 1 + (rand(B, 1, 1, 1) * 2 - 1) * saturation
        imgs = gray + (imgs - gray) * s
    if contrast > 0:
        mean = imgs.mean((1, 2, 3), keepdim=True)
        c = 1 + (rand(B, 1, 1, 1) * 2 - 1) * contrast
        imgs = mean + (imgs - mean) * c
    if brightness > 0:
        imgs = imgs + (rand(B, 1, 1, 1) * 2 - 1) * brightness
    kp = transform_points(keypoints.to(dtype), m)
    inside = (kp[..., 0] >= 0) & (kp[..., 0] <= W - 1) & \
        (kp[..., 1] >= 0) & (kp[..., 1] <= H - 1)
    return imgs, kp, valid & inside, m


def photometric_change(images: Tensor,
                       brightness: float = 0.3,
                       contrast: float = 0.3,
                       saturation: float = 0.5,
                       hue_shuffle: float = 0.5,
                       grayscale: float = 0.2,
                       generator: Optional[torch.Generator] = None
                       ) -> Tensor:
    """Random per-image colour changes of a normalised RGB batch.

    Brightness, contrast and saturation jitter as in
    :func:`augment_with_labels`, plus, with probability ``hue_shuffle``, a
    random permutation of the colour channels and, with probability
    ``grayscale``, the grey image: two copies of one object then differ in
    colour as two instances of a category do (a ginger and a grey cat), so
    descriptors that match them must rest on shape, not on colour.
    """
    B, C, _, _ = images.shape
    dev, dtype = images.device, images.dtype

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(dev, dtype)

    out = images
    if C == 3 and hue_shuffle > 0:
        perms = torch.stack([torch.randperm(3, generator=generator)
                             for _ in range(B)]).to(dev)
        shuffled = out.gather(1, perms[:, :, None, None].expand_as(out))
        pick = rand(B, 1, 1, 1) < hue_shuffle
        out = torch.where(pick, shuffled, out)
    if C == 3 and saturation > 0:
        gray = out.mean(1, keepdim=True)
        s = 1 + (rand(B, 1, 1, 1) * 2 - 1) * saturation
        s = torch.where(rand(B, 1, 1, 1) < grayscale, torch.zeros_like(s), s)
        out = gray + (out - gray) * s
    if contrast > 0:
        mean = out.mean((1, 2, 3), keepdim=True)
        out = mean + (out - mean) * (1 + (rand(B, 1, 1, 1) * 2 - 1) *
                                     contrast)
    if brightness > 0:
        out = out + (rand(B, 1, 1, 1) * 2 - 1) * brightness
    return out


def augment_config(cfg) -> Optional[Dict]:
    """Resolve ``train_cfg.augment``: None/False off, True defaults."""
    if cfg is None or cfg is False:
        return None
    if cfg is True:
        return dict(DEFAULT_AUGMENT)
    out = dict(DEFAULT_AUGMENT)
    unknown = set(cfg) - set(out)
    if unknown:
        raise ValueError(f'train_cfg.augment: unknown keys {sorted(unknown)}'
                         f', expected some of {sorted(out)}')
    out.update(cfg)
    return out


def pseudo_label_batch(bank, inputs: Tensor, data_samples: Sequence,
                       augment, stage: str) -> Tuple[Tensor, Dict]:
    """A batch's pseudo-labels, augmented together with its images.

    Args:
        bank (PseudoLabelBank, optional): The last round's pseudo-labels.
        inputs (Tensor): (B, 3, S, S) images.
        data_samples (Sequence[PoseDataSample]): ``sample_idx`` in their
            metainfo (the index into the bank).
        augment (bool | dict): ``train_cfg.augment`` (:func:`augment_config`).
        stage (str): The stage, for the error without a bank.

    Returns:
        tuple: The (augmented) inputs and the :meth:`PseudoLabelBank.lookup`
        dict, keypoints moved with the images and labels of the points
        that left them set to -1.

    Raises:
        RuntimeError: No clustering round has run yet.
    """
    if bank is None:
        raise RuntimeError(
            f'stage {stage!r} needs pseudo-labels, but no clustering round '
            'has run: train with train_cfg=dict(type="ULDTrainLoop")')
    pl = bank.lookup([ds.metainfo['sample_idx'] for ds in data_samples],
                     inputs.device)
    aug = augment_config(augment)
    if aug is not None:
        inputs, kpts, valid, _ = augment_with_labels(
            inputs, pl['keypoints'], pl['valid'], **aug)
        pl = dict(pl, keypoints=kpts, valid=valid)
        pl['labels'] = pl['labels'].masked_fill(~valid, -1)
    return inputs, pl
