# Copyright (c) mmuld contributors. All rights reserved.
"""Random valid pseudo-labels, for timing the self-training stages."""
import torch
from torch import nn

from mmuld.clustering import PseudoLabelBank


def random_bank(model: nn.Module, num_images: int, img_size: int,
                num_pose: int, two_stage: bool,
                generator: torch.Generator) -> PseudoLabelBank:
    """Random valid pseudo-labels of ``num_images`` images.

    Every image has the model's K landmarks at uniform random positions
    of the input; the last one is missing (invalid, label -1) in about 30
    % of the images. With ``two_stage`` each image gets a random pose
    cluster u in [0, ``num_pose``) and landmark k the global label
    u * K + k (two-stage clustering); otherwise the label is k and the
    pose cluster 0 (K-means). The latent codes are random, of the pose
    VAE's ``latent_dim`` (8 without a VAE).

    Args:
        model (nn.Module): The model (``num_landmarks``, optional
            ``pose_vae.latent_dim``).
        num_images (int): Images (rows) of the bank.
        img_size (int): Input side in pixels.
        num_pose (int): Pose clusters Q.
        two_stage (bool): Labels of two-stage clustering.
        generator (torch.Generator): Source of the random numbers.

    Returns:
        PseudoLabelBank: ``keypoints`` (N, K, 2) in input pixels,
        ``valid`` (N, K), ``labels`` (N, K), ``pose_labels`` (N,) and
        ``codes`` (N, Dz).
    """
    k = model.num_landmarks
    kpts = torch.rand(num_images, k, 2, generator=generator) * (
        img_size - 1)
    valid = torch.ones(num_images, k, dtype=torch.bool)
    valid[:, -1] = torch.rand(num_images, generator=generator) > 0.3
    pose = torch.randint(0, num_pose, (num_images, ), generator=generator)
    if two_stage:
        labels = pose[:, None] * k + torch.arange(k)[None]
    else:
        labels = torch.arange(k).expand(num_images, k).clone()
        pose = torch.zeros_like(pose)
    labels = torch.where(valid, labels, torch.full_like(labels, -1))
    dz = getattr(getattr(model, 'pose_vae', None), 'latent_dim', 8)
    return PseudoLabelBank(
        keypoints=kpts,
        valid=valid,
        labels=labels,
        pose_labels=pose,
        codes=torch.randn(num_images, int(dz), generator=generator))
