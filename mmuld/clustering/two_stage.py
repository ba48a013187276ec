# Copyright (c) mmuld contributors. All rights reserved.
"""Two-stage clustering (TSC) of D-ULD++ (Sec. 3.3.2 of the paper).

Stage 1 partitions the per-image latent pose codes ``phi_j`` into ``Q``
clusters (labels ``u_j``). Stage 2 clusters, inside every pose cluster, the
keypoint descriptors of the images of that cluster into ``K`` clusters. The
global label set is ``[R] = [Q] x [K]`` with ``r = u * K + k``.
"""
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .exemplar import _as_index, exemplar_assignment
from .kmeans import ArrayLike, KMeansResult, as_points, kmeans, resolve_device


@dataclass
class TwoStageResult:
    """Result of :func:`two_stage_clustering`.

    Attributes:
        pose_labels (Tensor): Stage-1 label ``u_j`` of every image, (N_img,).
        pose_centroids (Tensor): Stage-1 centroids, (Q, Dz).
        kp_labels (Tensor): Stage-2 label ``k`` in ``[0, K)`` of every
            keypoint, (P,); -1 for keypoints that were not clustered (only
            possible for an empty pose cluster, which has no keypoints).
        kp_global_labels (Tensor): Global label ``r = u * K + k`` in
            ``[0, Q * K)`` of every keypoint, (P,); -1 where ``kp_labels`` is
            -1.
        centroids (Tensor): Stage-2 centroids (Q, K, D); rows of clusters
            that do not exist are NaN.
        num_clusters (Tensor): Number of stage-2 clusters actually built in
            every pose cluster, (Q,); ``min(K, #keypoints of the pose
            cluster)``.
        exemplars (Tensor): (N_img, K) int64: for image ``j`` and cluster
            ``k`` of its pose cluster ``u_j``, the index of the keypoint of
            image ``j`` with label ``k`` nearest to ``centroids[u_j, k]``;
            -1 when image ``j`` has no keypoint of that cluster.
        exemplars_global (Tensor): (N_img, Q * K) int64: the same indexed by
            global label ``r``; columns of other pose clusters are -1.
        inertia (float): Sum of the stage-2 inertias.
    """
    pose_labels: Tensor
    pose_centroids: Tensor
    kp_labels: Tensor
    kp_global_labels: Tensor
    centroids: Tensor
    num_clusters: Tensor
    exemplars: Tensor
    exemplars_global: Tensor
    inertia: float

    @property
    def num_pose_clusters(self) -> int:
        """int: Q."""
        return int(self.centroids.shape[0])

    @property
    def num_kp_clusters(self) -> int:
        """int: K."""
        return int(self.centroids.shape[1])

    def image_pseudo_labels(self, img_idx: int) -> Tuple[Tensor, Tensor,
                                                         Tensor]:
        """Pseudo-labels of one image.

        Args:
            img_idx (int): Image index j.

        Returns:
            tuple[Tensor, Tensor, Tensor]: keypoint indices (M,), their
            labels in ``[0, K)`` (M,) and their global labels in
            ``[0, Q * K)`` (M,), with ``M <= K`` (clusters without exemplar
            in the image are skipped).
        """
        row = self.exemplars[img_idx]
        keep = (row >= 0).nonzero().squeeze(1)
        u = self.pose_labels[img_idx]
        return row[keep], keep, u * self.num_kp_clusters + keep


def two_stage_clustering(codes: ArrayLike,
                         kp_descriptors: ArrayLike,
                         kp_image_ids: ArrayLike,
                         Q: int,
                         K: int,
                         seed: int = 0,
                         n_iter: int = 30,
                         device: Optional[Union[str, torch.device]] = None,
                         **kmeans_kwargs) -> TwoStageResult:
    """Two-stage clustering: pose codes, then keypoint descriptors.

    A pose cluster holding fewer keypoints than ``K`` gets only as many
    stage-2 clusters as it has keypoints (``num_clusters[q] < K``); the
    missing centroids are NaN and have no exemplars. An empty pose cluster
    (possible only if stage 1 returns one) gets no stage-2 cluster.

    Args:
        codes (Tensor | ndarray): Per-image latent codes (N_img, Dz).
        kp_descriptors (Tensor | ndarray): Keypoint descriptors (P, D).
        kp_image_ids (Tensor | ndarray): Image index of every keypoint (P,),
            in ``[0, N_img)``.
        Q (int): Number of pose clusters, ``1 <= Q <= N_img``.
        K (int): Number of keypoint clusters per pose cluster (landmarks).
        seed (int): Random seed; stage 2 of pose cluster ``q`` uses
            ``seed + 1 + q``. Defaults to 0.
        n_iter (int): Maximum K-means iterations. Defaults to 30.
        device (str | torch.device, optional): Compute device.
        **kmeans_kwargs: Extra arguments of :func:`kmeans` (``tol``,
            ``batch_size``, ``minibatch``, ...).

    Returns:
        TwoStageResult: See the class documentation.
    """
    dev = resolve_device(device, kp_descriptors)
    codes = as_points(codes, 'codes', dev)
    desc = as_points(kp_descriptors, 'kp_descriptors', dev)
    n_img, p = codes.shape[0], desc.shape[0]
    img_ids = _as_index(kp_image_ids, 'kp_image_ids', p, dev)
    if p and (int(img_ids.min()) < 0 or int(img_ids.max()) >= n_img):
        raise ValueError(f'kp_image_ids must lie in [0, {n_img}) (number of '
                         'codes)')
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f'K must be a positive integer, got {K!r}')
    if not isinstance(Q, (int, np.integer)) or Q < 1:
        raise ValueError(f'Q must be a positive integer, got {Q!r}')
    Q, K = int(Q), int(K)

    stage1: KMeansResult = kmeans(
        codes, Q, n_iter=n_iter, seed=seed, device=dev, **kmeans_kwargs)
    pose_labels = stage1.labels
    kp_pose = pose_labels[img_ids]

    dim = desc.shape[1]
    centroids = torch.full((Q, K, dim),
                           float('nan'),
                           dtype=torch.float32,
                           device=dev)
    kp_labels = torch.full((p, ), -1, dtype=torch.long, device=dev)
    num_clusters = torch.zeros(Q, dtype=torch.long, device=dev)
    inertia = 0.0
    for q in range(Q):
        sel = (kp_pose == q).nonzero().squeeze(1)
        n_q = int(sel.numel())
        if n_q == 0:
            continue
        k_q = min(K, n_q)
        res = kmeans(
            desc[sel],
            k_q,
            n_iter=n_iter,
            seed=seed + 1 + q,
            device=dev,
            **kmeans_kwargs)
        centroids[q, :k_q] = res.centroids
        kp_labels[sel] = res.labels
        num_clusters[q] = k_q
        inertia += res.inertia

    kp_global = torch.where(kp_labels >= 0, kp_pose * K + kp_labels,
                            kp_labels)
    exemplars_global = exemplar_assignment(
        desc,
        img_ids,
        kp_global,
        centroids.view(Q * K, dim),
        num_images=n_img,
        device=dev)
    cols = pose_labels.unsqueeze(1) * K + torch.arange(K, device=dev)
    exemplars = exemplars_global.gather(1, cols)
    return TwoStageResult(
        pose_labels=pose_labels,
        pose_centroids=stage1.centroids,
        kp_labels=kp_labels,
        kp_global_labels=kp_global,
        centroids=centroids,
        num_clusters=num_clusters,
        exemplars=exemplars,
        exemplars_global=exemplars_global,
        inertia=inertia)
