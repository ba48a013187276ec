# Copyright (c) mmuld contributors. All rights reserved.
"""Can the descriptors place the parts at all? A probe with the answers.

Part accuracy mixes two things: whether the descriptors tell the parts
apart across instances, and whether the clustering chose the parts. This
probe takes the second away: each ground-truth part gets, as its
centroid, the mean descriptor at its ground-truth points over reference
images, and is decoded on query images as the model decodes a centroid
(the similarity peak, refined; :func:`similarity_peaks`). High accuracy
here with low accuracy of the discovered landmarks means the choice of
landmarks is at fault; low accuracy here means the descriptors are.
"""
from typing import Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .nme import Normaliser, normaliser


def ground_truth_probe(ref_maps: Tensor,
                       ref_kpts: Tensor,
                       query_maps: Tensor,
                       query_kpts: Tensor,
                       stride: float,
                       norm_points: Normaliser = (0, 1),
                       thrs: Sequence[float] = (0.1, 0.2, 0.3),
                       border: int = 1) -> Dict[str, np.ndarray]:
    """Per-part accuracy of ground-truth centroids decoded at their peaks.

    Args:
        ref_maps (Tensor): ``(N, D, h, w)`` descriptor maps of the
            reference (training) images.
        ref_kpts (Tensor): ``(N, G, 2)`` their ground truth, input pixels.
        query_maps (Tensor): ``(M, D, h, w)`` of the query (test) images.
        query_kpts (Tensor): ``(M, G, 2)`` their ground truth.
        stride (float): Map stride in input pixels.
        norm_points (tuple | str): Ground-truth points whose distance
            normalises the accuracy, or ``'bbox'``
            (:data:`~mmuld.evaluation.functional.nme.Normaliser`). Defaults
            to the first two (the eyes).
        thrs (Sequence[float]): Thresholds, shares of the normaliser.
        border (int): Map cells at the edge a peak may not use (as the
            model's ``test_cfg.border``).

    Returns:
        dict: ``accuracy`` ``(len(thrs), G)`` and ``pred`` ``(M, G, 2)``.
    """
    # mmuld.clustering imports mmuld.evaluation: import at call time
    from mmuld.clustering.dense_decoding import similarity_peaks
    from mmuld.models.utils import sample_descriptors
    if ref_kpts.shape[1] != query_kpts.shape[1]:
        raise ValueError('reference and query have different point counts: '
                         f'{ref_kpts.shape[1]} and {query_kpts.shape[1]}')
    ref = sample_descriptors(F.normalize(ref_maps.float(), dim=1),
                             ref_kpts.float(), stride)
    cents = F.normalize(ref.mean(0), dim=-1)
    out = similarity_peaks(F.normalize(query_maps.float(), dim=1), cents,
                           stride, radius=stride, border=border)
    pred = out['keypoints'].numpy()
    gt = query_kpts.double().numpy()
    norm = normaliser(gt, norm_points)
    keep = norm > 0
    # part g is decoded from its own centroid: no matching
    dist = np.linalg.norm(pred - gt, axis=-1)[keep] / norm[keep, None]
    acc = np.stack([(dist <= thr).mean(0) for thr in thrs])
    return dict(accuracy=acc, pred=pred)


def candidate_coverage(candidates: Tensor,
                       valid: Tensor,
                       gt: Tensor,
                       norm_points: Normaliser = (0, 1),
                       thrs: Sequence[float] = (0.1, 0.2, 0.3)
                       ) -> np.ndarray:
    """Per part, the share of images with a candidate near it.

    A clustering round can only put a landmark where its candidates are:
    a part that few images have a candidate on cannot form a cluster.

    Args:
        candidates (Tensor): ``(N, C, 2)`` candidates of N images, input
            pixels.
        valid (Tensor): ``(N, C)`` bool.
        gt (Tensor): ``(N, G, 2)`` the ground truth, input pixels.
        norm_points (tuple | str): As :func:`ground_truth_probe`.
        thrs (Sequence[float]): Thresholds, shares of the normaliser.

    Returns:
        np.ndarray: ``(len(thrs), G)`` shares in [0, 1].
    """
    gt_np = gt.double().numpy()
    norm = normaliser(gt_np, norm_points)
    dist = torch.cdist(gt.double(), candidates.double())
    dist = dist.masked_fill(~valid.bool()[:, None], float('inf'))
    nearest = dist.min(-1).values.numpy()
    keep = norm > 0
    rel = nearest[keep] / norm[keep, None]
    return np.stack([(rel <= thr).mean(0) for thr in thrs])


@torch.no_grad()
def descriptor_maps(model, images: Tensor, batch_size: int = 64) -> Tensor:
    """``model.descriptor_map`` of images in batches, in eval mode.

    Args:
        model: A model with ``descriptor_map(inputs)``.
        images (Tensor): ``(N, 3, S, S)`` network inputs.
        batch_size (int): Images per forward.

    Returns:
        Tensor: ``(N, D, h, w)`` on the CPU.
    """
    was_training = model.training
    model.eval()
    maps = [model.descriptor_map(c).cpu() for c in images.split(batch_size)]
    model.train(was_training)
    return torch.cat(maps)


@torch.no_grad()
def round_candidate_coverage(cfg, model, images: Tensor, gt: Tensor,
                             norm: Normaliser = (0, 1),
                             thrs: Sequence[float] = (0.1, 0.2, 0.3)
                             ) -> Dict[str, object]:
    """:func:`candidate_coverage` of the candidates that a clustering
    round of ``cfg`` (``train_cfg.clustering``: corners, or else the
    detector's dense cells) takes on ``images``.

    Args:
        cfg (Config): The run's config.
        model (ULDEstimator): The model (e.g. after bootstrapping).
        images (Tensor): ``(N, 3, S, S)`` network inputs, whole-image
            crops.
        gt (Tensor): ``(N, G, 2)`` their ground truth, input pixels.
        norm (tuple | str): As :func:`ground_truth_probe`.
        thrs (Sequence[float]): Thresholds, shares of the normaliser.

    Returns:
        dict: ``kind`` of candidates, ``per_image`` (their mean number)
        and ``coverage`` ``(len(thrs), G)``.
    """
    # mmuld.engine imports mmuld.evaluation: import at call time
    from mmuld.engine import ClusteringRounds
    rounds = ClusteringRounds(**cfg.train_cfg.get('clustering', {}))
    side = float(images.shape[-1])
    kind = 'corners' if rounds.candidates == 'corners' else 'dense'
    kwargs = dict(corner_window=rounds._corner_window(side),
                  corner_spacing=rounds.corner_spacing * side,
                  corner_subpix=int(round(rounds.corner_subpix * side))) \
        if kind == 'corners' else {}
    was_training = model.training
    model.eval()
    kpts, valid = [], []
    for chunk in images.split(64):
        out = model.extract_keypoints(
            chunk, candidates=kind,
            min_keypoints=rounds.min_keypoints(model), **kwargs)
        kpts.append(out['keypoints'])
        valid.append(out['valid'])
    model.train(was_training)
    kpts, valid = torch.cat(kpts), torch.cat(valid)
    return dict(kind=kind, per_image=float(valid.sum(1).float().mean()),
                coverage=candidate_coverage(kpts, valid, gt, norm, thrs))
