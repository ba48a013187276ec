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
from typing import Callable, Dict, Optional, Sequence

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


def first_round_probe(maps: Tensor,
                      descriptors: Tensor,
                      gt: Tensor,
                      stride: float,
                      num_landmarks: int,
                      overcluster: Optional[float] = None,
                      separation: float = 0.0,
                      peak_radius: float = 0.0,
                      border: int = 1,
                      norm_points: Normaliser = (0, 1),
                      thrs: Sequence[float] = (0.2, ),
                      seed: int = 0,
                      n_init: int = 10,
                      saliency: Optional[Callable[[Tensor], Tensor]] = None
                      ) -> Dict[str, np.ndarray]:
    """The choice of a first peak round, scored with the answers.

    The round that chooses the landmarks (:func:`peak_pseudo_labels`
    without previous centroids) is run on the images' descriptor maps and
    candidates as training runs it: K-means of the candidates into ``M =
    overcluster * K`` clusters, every cluster's similarity peak in every
    image, K sharply peaked distinct clusters kept. Per part it reports
    two figures that tell where a part is lost: ``best``, the accuracy of
    the over-cluster that hits it most often (low: no cluster forms on the
    part, the candidates or the descriptors are at fault), and ``chosen``,
    the accuracy of the K kept landmarks after Hungarian matching (low
    with a high ``best``: the ranking left the part out).

    Args:
        maps (Tensor): ``(N, D, h, w)`` L2-normalised descriptor maps.
        descriptors (Tensor): ``(P, D)`` the candidates' descriptors, all
            images together.
        gt (Tensor): ``(N, G, 2)`` ground truth, input pixels.
        stride (float): Map stride in input pixels.
        num_landmarks (int): K.
        overcluster (float, optional): M / K (None: K clusters).
        separation (float): Distinct parts are this far apart (input
            pixels).
        peak_radius (float): Radius of the peak margin (input pixels).
        border (int): Map cells at the edge that hold no peak.
        norm_points (tuple | str): As :func:`ground_truth_probe`.
        thrs (Sequence[float]): Thresholds, shares of the normaliser.
        seed (int): K-means seed.
        n_init (int): K-means restarts.
        saliency (callable, optional): ``keypoints (N, C, 2) -> (N, C)``,
            the weight of each peak's margin in the ranking (as the
            round's ``corner_rank``).

    Returns:
        dict: ``best`` and ``chosen`` ``(len(thrs), G)``, ``overclusters``
        (M) and ``best_cluster`` ``(len(thrs), G)`` the index of each
        part's best over-cluster.
    """
    # mmuld.clustering imports mmuld.evaluation: import at call time
    from mmuld.clustering.clustering_round import peak_pseudo_labels
    from mmuld.clustering.dense_decoding import similarity_peaks
    from .landmark_accuracy import per_landmark_accuracy
    decoded = []

    def decode(cents: Tensor, with_descriptors: bool) -> Dict[str, Tensor]:
        out = similarity_peaks(maps, cents, stride, radius=peak_radius,
                               border=border,
                               with_descriptors=with_descriptors)
        if saliency is not None:
            out['saliency'] = saliency(out['keypoints'])
        decoded.append(out['keypoints'])
        return out

    bank, _, _ = peak_pseudo_labels(
        descriptors, maps.shape[0], num_landmarks, decode, seed=seed,
        n_init=n_init, overcluster=overcluster, separation=separation)
    gt_np = gt.double().numpy()
    norm = normaliser(gt_np, norm_points)
    keep = norm > 0
    over = decoded[0].double().numpy()[keep]
    chosen = bank.keypoints.double().numpy()[keep]
    best, best_cluster, kept = [], [], []
    for thr in thrs:
        hit = per_landmark_accuracy(over, gt_np[keep], norm[keep],
                                    thr=thr)['hit_rate']
        best.append(hit.max(0))
        best_cluster.append(hit.argmax(0))
        kept.append(per_landmark_accuracy(chosen, gt_np[keep], norm[keep],
                                          thr=thr)['gt_accuracy'])
    return dict(best=np.stack(best), chosen=np.stack(kept),
                overclusters=int(decoded[0].shape[1]),
                best_cluster=np.stack(best_cluster))


def _round_candidates(rounds, model, images: Tensor) -> Dict[str, object]:
    """The candidates a clustering round takes on ``images``: corners, or
    else the detector's dense cells; ``keypoints`` (N, C, 2), ``valid``
    (N, C) and ``descriptors`` (N, C, D)."""
    side = float(images.shape[-1])
    kind = 'corners' if rounds.candidates == 'corners' else 'dense'
    kwargs = rounds.corner_kwargs(side) if kind == 'corners' else {}
    was_training = model.training
    model.eval()
    outs = [
        model.extract_keypoints(
            chunk, candidates=kind,
            min_keypoints=rounds.min_keypoints(model), **kwargs)
        for chunk in images.split(64)
    ]
    model.train(was_training)
    return dict(
        kind=kind,
        **{key: torch.cat([o[key].cpu() for o in outs])
           for key in ('keypoints', 'valid', 'descriptors')})


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
    cands = _round_candidates(rounds, model, images)
    kpts, valid = cands['keypoints'], cands['valid']
    return dict(kind=cands['kind'],
                per_image=float(valid.sum(1).float().mean()),
                coverage=candidate_coverage(kpts, valid, gt, norm, thrs))


@torch.no_grad()
def round_first_choice(cfg, model, images: Tensor, gt: Tensor,
                       norm: Normaliser = (0, 1),
                       thrs: Sequence[float] = (0.2, ),
                       maps: Optional[Tensor] = None) -> Dict[str, object]:
    """:func:`first_round_probe` of the first clustering round of ``cfg``
    (``train_cfg.clustering`` with ``decode='peaks'``) on ``images``, with
    ``model``'s descriptors and candidates (e.g. after bootstrapping).

    Args:
        cfg (Config): The run's config.
        model (ULDEstimator): The model.
        images (Tensor): ``(N, 3, S, S)`` network inputs, whole-image
            crops.
        gt (Tensor): ``(N, G, 2)`` their ground truth, input pixels.
        norm (tuple | str): As :func:`ground_truth_probe`.
        thrs (Sequence[float]): Thresholds, shares of the normaliser.
        maps (Tensor, optional): The images' :func:`descriptor_maps`,
            where the caller has them already.

    Returns:
        dict: as :func:`first_round_probe`.
    """
    # mmuld.engine imports mmuld.evaluation: import at call time
    from mmuld.engine import ClusteringRounds
    from mmuld.models.utils.interest_points import corner_strength
    rounds = ClusteringRounds(**cfg.train_cfg.get('clustering', {}))
    if rounds.decode != 'peaks':
        raise ValueError("the first-round probe needs a peak round "
                         "(train_cfg.clustering.decode='peaks'), got "
                         f'{rounds.decode!r}')
    side = float(images.shape[-1])
    cands = _round_candidates(rounds, model, images)
    if maps is None:
        maps = descriptor_maps(model, images)
    window = rounds._corner_window(side)
    saliency = (lambda kpts: corner_strength(images, kpts, window)) \
        if rounds.corner_rank else None
    return first_round_probe(
        maps, cands['descriptors'][cands['valid']], gt, model.stride,
        model.num_landmarks, overcluster=rounds.overcluster,
        separation=rounds.separation * side,
        peak_radius=rounds.peak_radius * side, border=model.test_cfg.border,
        norm_points=norm, thrs=thrs, seed=rounds.seed,
        n_init=rounds.kmeans_n_init, saliency=saliency)
