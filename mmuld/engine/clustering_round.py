# Copyright (c) mmuld contributors. All rights reserved.
"""One clustering round: keypoints and descriptors -> pseudo-labels."""
from typing import Dict, Optional, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmuld.clustering import exemplar_assignment, kmeans, two_stage_clustering
from .pseudo_label_bank import PseudoLabelBank


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
                          device: Optional[str] = None
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

    Returns:
        tuple: the :class:`PseudoLabelBank`, the centroids for inference
        (``centroids`` (Q', K, D), ``pose_centroids`` (Q, Dz) or None) and
        statistics (inertia, images with all K landmarks, ...).
    """
    if descriptors.shape[0] < num_landmarks:
        raise ValueError(
            f'only {descriptors.shape[0]} keypoints were detected on the '
            f'whole training set, fewer than K={num_landmarks} clusters: '
            'lower test_cfg.score_thr or train the detector longer')
    k = num_landmarks
    glob = kmeans(descriptors, k, seed=seed, device=device)
    stats = dict(inertia=float(glob.inertia), reseeds=float(glob.n_reseeds))
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
            codes, descriptors, image_ids, Q=q, K=k, seed=seed, device=device)
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
        mean_landmarks_per_image=float(per_image.mean()),
        images_without_landmarks=float((per_image == 0).sum()),
        smallest_cluster=float(valid.sum(0).min()))
    return bank, cents, stats


def summarize(stats: Dict[str, float]) -> str:
    """One log line of clustering statistics."""
    return ', '.join(f'{k}={v:.4g}' for k, v in stats.items())
