# Copyright (c) mmuld contributors. All rights reserved.
"""How well a diffusion model's raw features find known keypoints.

A training-free correspondence probe: each ground-truth keypoint gets the
mean of the (L2-normalised, all tapped layers, all timesteps) UNet features
at its position over the reference images; on each query image the keypoint
is predicted at the cell most similar to that mean. The error is the mean
distance to the ground truth in units of the image side. Features that know
where the parts are give a low error; random weights give a high one. The
baseline is :func:`mean_position_error`: each keypoint predicted at its mean
position, which features that know nothing can match.
"""
import json
import os.path as osp
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .images import load_images


@torch.no_grad()
def dense_features(backbone, images: Tensor, size: int) -> Tensor:
    """Per-pixel raw UNet features of ``StableDiffusionBackbone``.

    Args:
        backbone (StableDiffusionBackbone): The feature extractor.
        images (Tensor): (N, 3, H, W) in [-1, 1].
        size (int): Side of the returned maps.

    Returns:
        Tensor: (N, C, size, size), unit length per layer, averaged over
        timesteps, layers concatenated.
    """
    maps: List[Tensor] = []
    for chunk in images.split(16):
        feats = backbone.extract_features(chunk)
        per_layer = []
        for f in feats:  # (B, T, C, h, w)
            f = F.normalize(f.float().mean(1), dim=1)
            per_layer.append(
                F.interpolate(
                    f, size=(size, size), mode='bilinear',
                    align_corners=False))
        maps.append(torch.cat(per_layer, 1))
    return torch.cat(maps)


@torch.no_grad()
def keypoint_probe_error(backbone, ref_images: Tensor, ref_kpts: Tensor,
                         query_images: Tensor, query_kpts: Tensor,
                         size: int = 16) -> float:
    """Mean error of nearest-feature keypoint correspondence.

    Args:
        backbone (StableDiffusionBackbone): The feature extractor.
        ref_images (Tensor): (N, 3, H, W) reference images in [-1, 1].
        ref_kpts (Tensor): (N, K, 2) their keypoints, x y in [0, 1].
        query_images (Tensor): (M, 3, H, W) query images.
        query_kpts (Tensor): (M, K, 2) their keypoints, x y in [0, 1].
        size (int): Side of the feature grid the probe searches.
            Defaults to 16.

    Returns:
        float: Mean distance between predicted and true query keypoints,
        in units of the image side.
    """
    ref = dense_features(backbone, ref_images, size)
    grid = (ref_kpts * 2 - 1).unsqueeze(2)  # (N, K, 1, 2) in [-1, 1]
    at_kpts = F.grid_sample(ref, grid, align_corners=False)[..., 0]
    protos = F.normalize(at_kpts.mean(0).t(), dim=1)  # (K, C)
    query = F.normalize(dense_features(backbone, query_images, size), dim=1)
    sim = torch.einsum('kc,nchw->nkhw', protos, query)
    best = sim.flatten(2).argmax(-1)  # (M, K)
    pred = torch.stack([best % size, best // size], -1).float()
    pred = (pred + 0.5) / size
    return float((pred - query_kpts).norm(dim=-1).mean())


def mean_position_error(ref_kpts: Tensor, query_kpts: Tensor) -> float:
    """The probe's baseline: every query keypoint at its mean position.

    Features that carry no information still score this much if their
    best match falls where the keypoint usually is (e.g. a pattern that is
    the same in every image, such as the fixed-seed noise at a large
    timestep), so a probe error shows what features know only when it is
    below this one.

    Args:
        ref_kpts (Tensor): (N, K, 2) reference keypoints in [0, 1].
        query_kpts (Tensor): (M, K, 2) query keypoints in [0, 1].

    Returns:
        float: Mean distance between the reference mean and the query
        keypoints, in units of the image side.
    """
    return float((query_kpts - ref_kpts.mean(0)).norm(dim=-1).mean())


def load_keypoint_images(data_root: str, ann_file: str, size: int,
                         limit: Optional[int] = None
                         ) -> Tuple[Tensor, Tensor]:
    """Images of a COCO keypoint json and their keypoints in [0, 1].

    Args:
        data_root (str): Folder the json's ``file_name`` are relative to.
        ann_file (str): COCO keypoint json (one annotation per image; the
            first is used).
        size (int): Side the images are resized to.
        limit (int, optional): Use the first ``limit`` images only.

    Returns:
        tuple: ``(images, keypoints)``, (N, 3, size, size) in [-1, 1] and
        (N, K, 2) as fractions of the image side.
    """
    with open(ann_file, encoding='utf-8') as f:
        coco = json.load(f)
    first = {}
    for a in coco['annotations']:
        first.setdefault(a['image_id'], a)
    ims = [im for im in coco['images'] if im['id'] in first][:limit]
    kpts = torch.tensor(
        [first[im['id']]['keypoints'] for im in ims],
        dtype=torch.float32).view(len(ims), -1, 3)[..., :2]
    wh = torch.tensor([[im['width'], im['height']] for im in ims],
                      dtype=torch.float32)
    images, kept = load_images(
        [osp.join(data_root, im['file_name']) for im in ims], size)
    if len(kept) != len(ims):
        raise ValueError(f'{len(ims) - len(kept)} image(s) of {ann_file!r} '
                         'could not be read')
    return images, kpts / wh.view(-1, 1, 2)
