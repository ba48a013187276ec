# Copyright (c) mmuld contributors. All rights reserved.
"""One clustering round: keypoints and descriptors -> pseudo-labels."""
import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .dense_decoding import select_peaked_clusters
from .exemplar import exemplar_assignment
from .kmeans import kmeans
from .pseudo_label_bank import PseudoLabelBank
from .two_stage import two_stage_clustering


def _gather_exemplars(kpts: Tensor, ex: Tensor) -> Tuple[Tensor, Tensor]:
    """Keypoints (N, K, 2) and validity (N, K) from exemplar indices."""
    valid = ex >= 0
    out = kpts[ex.clamp(min=0)] * valid[..., None]
    return out, valid


def align_pose_clusters(centroids: Tensor, reference: Tensor) -> Tensor:
    """Permutation per pose cluster matching its K centroids to a reference.

    Stage-2 clusters of different pose clusters are found independently,
    so cluster k of pose cluster q and cluster k of pose cluster q' need not
    be the same landmark. The Hungarian algorithm on centroid distances
    matches the K clusters of every pose cluster to the K centroids of a
    global K-means, which gives landmark ids that are consistent across
    pose clusters (needed at test time, where landmark k must mean the same
    point on every image).

    Args:
        centroids (Tensor): (Q, K, D), NaN rows for missing clusters.
        reference (Tensor): (K, D) global centroids.

    Returns:
        Tensor: (Q, K) int64 ``perm`` with ``perm[q, k]`` the stage-2 cluster
        of pose cluster q that plays landmark k.
    """
    q, k, _ = centroids.shape
    perm = torch.empty(q, k, dtype=torch.long)
    for i in range(q):
        cost = torch.cdist(
            torch.nan_to_num(centroids[i].float(), nan=1e6),
            reference.float()).cpu().numpy()
        rows, cols = linear_sum_assignment(cost)
        perm[i, torch.as_tensor(cols)] = torch.as_tensor(rows)
    return perm


def cluster_pseudo_labels(keypoints: Tensor,
                          descriptors: Tensor,
                          image_ids: Tensor,
                          num_images: int,
                          num_landmarks: int,
                          codes: Optional[Tensor] = None,
                          num_pose_clusters: int = 1,
                          seed: int = 0,
                          device: Optional[str] = None,
                          near_border: Optional[Tensor] = None,
                          n_init: int = 1
                          ) -> Tuple[PseudoLabelBank, Dict[str, Tensor],
                                     Dict[str, float]]:
    """Cluster keypoint descriptors into pseudo-labels.

    Without ``codes``: K-means of all descriptors into K clusters and
    exemplar assignment (D-ULD, Sec. 3.2). With ``codes``: two-stage
    clustering (D-ULD++, Sec. 3.3.2) into Q pose clusters then K keypoint
    clusters in each, with landmark ids aligned across pose clusters
    (:func:`align_pose_clusters`).

    Args:
        keypoints (Tensor): (P, 2) keypoints of all images, input pixels.
        descriptors (Tensor): (P, D) their descriptors.
        image_ids (Tensor): (P,) image index (dataset ``sample_idx``).
        num_images (int): Number of images N of the training set.
        num_landmarks (int): K.
        codes (Tensor, optional): (N, Dz) latent pose codes phi.
        num_pose_clusters (int): Q (two-stage clustering only).
        seed (int): Random seed of K-means.
        device (str, optional): Clustering device (GPU when available).
        near_border (Tensor, optional): (P,) bool, keypoints within 2 map
            cells of the crop border or of padding (diagnostics only).
        n_init (int): K-means runs from different seeds, the lowest
            inertia kept (every K-means of the round). Defaults to 1.

    Returns:
        tuple: the :class:`PseudoLabelBank`, the centroids for inference
        (``centroids`` (Q', K, D), ``pose_centroids`` (Q, Dz) or None) and
        statistics, see :func:`round_diagnostics`.
    """
    if descriptors.shape[0] < num_landmarks:
        raise ValueError(
            f'only {descriptors.shape[0]} keypoints were detected on the '
            f'whole training set, fewer than K={num_landmarks} clusters: '
            'lower test_cfg.score_thr or train the detector longer')
    k = num_landmarks
    glob = kmeans(descriptors, k, seed=seed, device=device, n_init=n_init)
    stats = round_diagnostics(image_ids, num_images, glob.labels.cpu(), k,
                              near_border)
    stats.update(
        inertia=float(glob.inertia), reseeds=float(glob.n_reseeds))
    if codes is None:
        ex = exemplar_assignment(
            descriptors, image_ids, glob.labels, glob.centroids,
            num_images=num_images, device=device).cpu()
        kp, valid = _gather_exemplars(keypoints, ex)
        labels = torch.arange(k).expand(num_images, k).clone()
        pose = torch.zeros(num_images, dtype=torch.long)
        cents = dict(centroids=glob.centroids[None].cpu(), pose_centroids=None)
    else:
        q = min(num_pose_clusters, num_images)
        tsc = two_stage_clustering(
            codes, descriptors, image_ids, Q=q, K=k, seed=seed, device=device,
            n_init=n_init)
        perm = align_pose_clusters(tsc.centroids.cpu(), glob.centroids.cpu())
        pose = tsc.pose_labels.cpu().long()
        ex = torch.gather(tsc.exemplars.cpu(), 1, perm[pose])
        kp, valid = _gather_exemplars(keypoints, ex)
        labels = pose[:, None] * k + torch.arange(k)[None]
        aligned = torch.stack(
            [tsc.centroids[i].cpu()[perm[i]] for i in range(q)])
        cents = dict(
            centroids=aligned, pose_centroids=tsc.pose_centroids.cpu())
        stats['tsc_inertia'] = float(tsc.inertia)
        stats['pose_cluster_sizes_min'] = float(
            torch.bincount(pose, minlength=q).min())
    labels = labels.masked_fill(~valid, -1)
    bank = PseudoLabelBank(
        keypoints=kp.float(),
        valid=valid,
        labels=labels.long(),
        pose_labels=pose,
        codes=None if codes is None else torch.as_tensor(codes).float())
    per_image = valid.sum(1).float()
    stats.update(
        landmarks_per_image=float(per_image.mean()),
        images_without_landmarks=float((per_image == 0).sum()))
    return bank, cents, stats


def round_diagnostics(image_ids: Tensor,
                      num_images: int,
                      labels: Tensor,
                      num_clusters: int,
                      near_border: Optional[Tensor] = None
                      ) -> Dict[str, float]:
    """Health figures of one clustering round (see docs/methods.md).

    A detector that collapses (about one keypoint per image), keypoints
    that sit on the crop border or padding, and degenerate clusters show
    up here at the round where they happen.

    Args:
        image_ids (Tensor): (P,) image of each keypoint.
        num_images (int): Training images N.
        labels (Tensor): (P,) K-means cluster of each keypoint.
        num_clusters (int): K.
        near_border (Tensor, optional): (P,) bool, keypoint within 2 map
            cells of the crop border or of padding.

    Returns:
        dict: ``keypoints`` (total), ``kpts_per_image_mean``,
        ``kpts_per_image_min``, ``border_share`` (fraction of keypoints
        near the border, if given), ``cluster_size_min`` and
        ``cluster_size_max``.
    """
    per_image = torch.bincount(image_ids.long().cpu(), minlength=num_images)
    sizes = torch.bincount(labels.long().cpu(), minlength=num_clusters)
    out = dict(
        keypoints=float(image_ids.numel()),
        kpts_per_image_mean=float(per_image.float().mean()),
        kpts_per_image_min=float(per_image.min()))
    if near_border is not None and near_border.numel():
        out['border_share'] = float(near_border.float().mean())
    out.update(
        cluster_size_min=float(sizes.min()),
        cluster_size_max=float(sizes.max()))
    return out


def health_warnings(stats: Dict[str, float], num_landmarks: int) -> list:
    """Plain-language warnings for a round whose figures show a failure.

    Args:
        stats (dict): Output of :func:`cluster_pseudo_labels`.
        num_landmarks (int): K.

    Returns:
        list[str]: One message per problem (empty when healthy).
    """
    out = []
    mean = stats.get('kpts_per_image_mean')
    if mean is not None and mean < num_landmarks:
        out.append(f'only {mean:.2f} keypoints per image for K='
                   f'{num_landmarks} landmarks: the detector has collapsed '
                   '(or test_cfg.score_thr is too high)')
    share = stats.get('border_share')
    if share is not None and share > 0.25:
        out.append(f'{100 * share:.0f}% of the keypoints lie within 2 map '
                   'cells of the crop border or padding')
    lo = stats.get('cluster_size_min')
    if lo is not None and lo == 0:
        out.append('an empty cluster (re-seeded by K-means)')
    return out


def summarize(stats: Dict[str, float]) -> str:
    """One log line of clustering statistics."""
    return ', '.join(f'{k}={v:.4g}' for k, v in stats.items())


#: ``decode(centroids, with_descriptors) -> dict``: the similarity peaks
#: (:func:`~mmuld.clustering.dense_decoding.similarity_peaks`) of every
#: training image for ``centroids`` (``(C, D)`` for all images, or
#: ``(N, C, D)`` one set per image), stacked in image order: ``keypoints``
#: (N, C, 2), ``peak`` (N, C), ``margin`` (N, C), ``valid`` (N, C), if
#: asked, ``descriptors`` (N, C, D) and, optionally, ``saliency`` (N, C) >= 0
#: (e.g. the image's corner response at the peak), which then weighs the
#: margin when the K landmarks are chosen.
PeakDecoder = Callable[[Tensor, bool], Dict[str, Tensor]]

#: ``sample(points) -> Tensor``: the (N, K, D) L2-normalised descriptors of
#: every training image at ``points`` (N, K, 2), input pixels, in image
#: order.
AnchorSampler = Callable[[Tensor], Tensor]


def _rank_score(peaks: Dict[str, Tensor]) -> Tensor:
    """Per image and centroid, what ranks the centroids: the peak margin,
    times the peak's ``saliency`` relative to its mean where the decoder
    gives one (a part is sharply peaked *and* salient in every image)."""
    if 'saliency' not in peaks:
        return peaks['margin']
    sal = peaks['saliency'].float().clamp(min=0)
    return peaks['margin'].clamp(min=0) * sal / sal.mean().clamp(min=1e-12)


def _refine_centroids(cents: Tensor, decode: PeakDecoder,
                      steps: int) -> Tensor:
    """Move each centroid to the mean descriptor at its peaks."""
    for _ in range(max(0, steps)):
        at = decode(cents, True)
        cents = F.normalize(at['descriptors'].float().mean(0), dim=-1)
    return cents


def peak_pseudo_labels(descriptors: Tensor,
                       num_images: int,
                       num_landmarks: int,
                       decode: PeakDecoder,
                       codes: Optional[Tensor] = None,
                       num_pose_clusters: int = 1,
                       seed: int = 0,
                       device: Optional[str] = None,
                       n_init: int = 1,
                       overcluster: Optional[float] = None,
                       separation: float = 0.0,
                       refine_steps: int = 1,
                       init_centroids: Optional[Tensor] = None,
                       anchors: Optional[Tensor] = None,
                       sample: Optional[AnchorSampler] = None
                       ) -> Tuple[PseudoLabelBank, Dict[str, Tensor],
                                  Dict[str, float]]:
    """Pseudo-labels at the similarity peaks of K distinct centroids.

    Steps 1 and 2 choose the landmarks; a later round of the same run
    (``init_centroids``: the previous round's K centroids) keeps them and
    re-estimates each centroid, so landmark k stays the same part from
    round to round while self-training changes the descriptors. With
    ``anchors`` (the keypoints of the round that chose the landmarks) and
    ``sample``, a centroid is the mean of the current descriptors at its
    anchors: the estimate follows the descriptors but stays tied to the
    places where the landmark was chosen. Without them it is the mean
    descriptor at its own peaks, ``refine_steps`` times, which compounds
    from round to round (docs/methods.md, "Centroids re-estimated at the
    anchors").

    1. K-means of the candidates' descriptors into ``M = overcluster * K``
       clusters (K without ``overcluster``).
    2. Every centroid's similarity peak in every training image
       (``decode``); K centroids with sharp (and, with the decoder's
       ``saliency``, salient) peaks at distinct places are kept
       (:func:`select_peaked_clusters`).
    3. With ``codes`` (two-stage clustering): K-means of the codes into Q
       pose clusters; inside each, the K centroids are re-estimated as the
       mean descriptor at their peaks in the pose cluster's images and the
       peaks found again, ``refine_steps`` times. Starting from the global
       centroids keeps landmark k the same part in every pose cluster.

    Args:
        descriptors (Tensor): (P, D) descriptors of the candidates.
        num_images (int): Training images N.
        num_landmarks (int): K.
        decode (callable): See :data:`PeakDecoder`.
        codes (Tensor, optional): (N, Dz) latent pose codes.
        num_pose_clusters (int): Q (with ``codes``).
        seed (int): K-means seed.
        device (str, optional): Clustering device.
        n_init (int): K-means restarts.
        overcluster (float, optional): M / K.
        separation (float): Peaks closer than this (input pixels, median
            over images) are one part.
        refine_steps (int): Re-estimations of the centroids (of the
            previous round's, and inside the pose clusters).
        init_centroids (Tensor, optional): (K, D) the previous round's
            centroids; None: choose the K landmarks.
        anchors (Tensor, optional): (N, K, 2) where the landmarks were
            chosen (:attr:`PseudoLabelBank.anchors`), with
            ``init_centroids``; ignored when ``refine_steps`` is 0.
        sample (callable, optional): See :data:`AnchorSampler`; needed with
            ``anchors``.

    Returns:
        tuple: as :func:`cluster_pseudo_labels`; the bank's ``anchors`` are
        ``anchors``, or this round's keypoints when it chose the landmarks.
    """
    k = num_landmarks
    at_anchors = None
    if init_centroids is not None:
        cents = F.normalize(init_centroids.float().cpu(), dim=-1)
        if anchors is not None and refine_steps > 0:
            if sample is None:
                raise ValueError('anchors need a sample function')
            if anchors.shape != (num_images, k, 2):
                raise ValueError(
                    f'anchors of shape {tuple(anchors.shape)} for {num_images}'
                    f' images and K={k}: the training set or K changed since '
                    'the landmarks were chosen')
            at_anchors = sample(anchors.float()).float()
            cents = F.normalize(at_anchors.mean(0), dim=-1)
        else:
            cents = _refine_centroids(cents, decode, refine_steps)
        peaks = decode(cents, False)
        kpts, valid, margin = peaks['keypoints'], peaks['valid'], \
            peaks['margin']
        stats = dict(kept_landmarks=float(k))
    else:
        if descriptors.shape[0] < k:
            raise ValueError(
                f'only {descriptors.shape[0]} keypoints were detected on '
                f'the whole training set, fewer than K={k} clusters')
        m = k if not overcluster or overcluster <= 1 else int(
            min(descriptors.shape[0], math.ceil(overcluster * k)))
        km = kmeans(descriptors, m, seed=seed, device=device, n_init=n_init)
        cents_m = F.normalize(km.centroids.float().cpu(), dim=-1)
        peaks = decode(cents_m, False)
        sel = select_peaked_clusters(peaks['keypoints'], _rank_score(peaks),
                                     k, separation)
        idx = sel['indices']
        cents = cents_m[idx]
        kpts, valid = peaks['keypoints'][:, idx], peaks['valid'][:, idx]
        margin = peaks['margin'][:, idx]
        stats = dict(
            overclusters=float(m), kmeans_inertia=float(km.inertia),
            duplicates=float(sel['duplicates']),
            relaxed=float(sel['relaxed']))
        anchors = kpts.float().clone()
    stats.update(margin_mean=float(margin.mean()),
                 margin_min_landmark=float(margin.mean(0).min()))
    pose = torch.zeros(num_images, dtype=torch.long)
    pose_cents = None
    q = 1
    if codes is not None:
        q = min(num_pose_clusters, num_images)
        pk = kmeans(codes, q, seed=seed, device=device, n_init=n_init)
        pose = pk.labels.cpu().long()
        pose_cents = pk.centroids.cpu()
        per_pose = cents[None].repeat(q, 1, 1)
        steps = 1 if at_anchors is not None else max(0, refine_steps)
        for _ in range(steps):
            at = at_anchors if at_anchors is not None else decode(
                per_pose[pose], True)['descriptors'].float()
            for u in range(q):
                rows = pose == u
                if rows.any():
                    per_pose[u] = F.normalize(at[rows].mean(0), dim=-1)
            res = decode(per_pose[pose], False)
            kpts, valid, margin = res['keypoints'], res['valid'], \
                res['margin']
        cents = per_pose
        stats['pose_cluster_sizes_min'] = float(
            torch.bincount(pose, minlength=q).min())
    labels = pose[:, None] * k + torch.arange(k)[None]
    labels = labels.masked_fill(~valid, -1)
    bank = PseudoLabelBank(
        keypoints=kpts.float(), valid=valid, labels=labels.long(),
        pose_labels=pose,
        codes=None if codes is None else torch.as_tensor(codes).float(),
        anchors=None if anchors is None else anchors.float())
    per_image = valid.sum(1).float()
    stats.update(
        landmarks_per_image=float(per_image.mean()),
        images_without_landmarks=float((per_image == 0).sum()))
    centroids = cents if cents.dim() == 3 else cents[None]
    return bank, dict(centroids=centroids, pose_centroids=pose_cents), stats
