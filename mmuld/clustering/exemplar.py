# Copyright (c) mmuld contributors. All rights reserved.
"""Per-image exemplar selection: the point closest to each cluster centre."""
from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .kmeans import (ArrayLike, as_points, assign_to_centroids,
                     resolve_device)


def _as_index(x: ArrayLike, name: str, n: int,
              device: torch.device) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor or numpy.ndarray')
    if x.ndim != 1 or x.shape[0] != n:
        raise ValueError(f'{name} must have shape ({n},), got '
                         f'{tuple(x.shape)}')
    if x.is_floating_point() or x.is_complex():
        raise ValueError(f'{name} must hold integers, got {x.dtype}')
    return x.to(device=device, dtype=torch.long)


def exemplar_assignment(
    descriptors: ArrayLike,
    image_ids: ArrayLike,
    labels: ArrayLike,
    centroids: ArrayLike,
    num_images: Optional[int] = None,
    return_distances: bool = False,
    device: Optional[Union[str, torch.device]] = None
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Pick, per image and per cluster, the point nearest to the centroid.

    For image ``j`` and cluster ``c`` the exemplar is the point ``p`` with
    ``image_ids[p] == j`` and ``labels[p] == c`` that minimises
    ``||descriptors[p] - centroids[c]||``. Ties go to the smallest point
    index. Fully vectorised (``scatter_reduce``), no loop over points.

    Args:
        descriptors (Tensor | ndarray): Point descriptors (P, D).
        image_ids (Tensor | ndarray): Image index of every point (P,), in
            ``[0, num_images)``.
        labels (Tensor | ndarray): Cluster label of every point (P,), in
            ``[0, C)``; negative labels mark points to ignore.
        centroids (Tensor | ndarray): Cluster centres (C, D). Rows with NaN
            (missing clusters) never get an exemplar.
        num_images (int, optional): Number of images. Defaults to
            ``image_ids.max() + 1``.
        return_distances (bool): Also return the squared distance of each
            exemplar to its centroid (``inf`` where there is none).
        device (str | torch.device, optional): Compute device (see
            :func:`resolve_device`). The results always come back on the
            device of ``descriptors`` (the CPU for numpy arrays).

    Returns:
        Tensor | tuple[Tensor, Tensor]: ``indices`` of shape
        (num_images, C), int64, the exemplar point index or -1 when image
        ``j`` has no point of cluster ``c``; and optionally ``distances``
        (num_images, C).
    """
    out_dev = descriptors.device if isinstance(
        descriptors, Tensor) else torch.device('cpu')
    dev = resolve_device(device, descriptors)
    desc = as_points(descriptors, 'descriptors', dev)
    p = desc.shape[0]
    image_ids = _as_index(image_ids, 'image_ids', p, dev)
    labels = _as_index(labels, 'labels', p, dev)
    if isinstance(centroids, np.ndarray):
        centroids = torch.from_numpy(np.ascontiguousarray(centroids))
    centroids = centroids.to(device=dev, dtype=torch.float32)
    if centroids.ndim != 2 or centroids.shape[1] != desc.shape[1]:
        raise ValueError(f'centroids must have shape (C, {desc.shape[1]}), '
                         f'got {tuple(centroids.shape)}')
    c = centroids.shape[0]
    if p and int(labels.max()) >= c:
        raise ValueError(f'labels must be < number of centroids ({c}), got '
                         f'max label {int(labels.max())}')
    if p and int(image_ids.min()) < 0:
        raise ValueError('image_ids must be non-negative')
    if num_images is None:
        num_images = int(image_ids.max()) + 1 if p else 0
    elif p and int(image_ids.max()) >= num_images:
        raise ValueError(f'image_ids must be < num_images ({num_images}), '
                         f'got {int(image_ids.max())}')

    n_slots = num_images * c
    best_idx = torch.full((n_slots, ), p, dtype=torch.long, device=dev)
    best_dist = torch.full((n_slots, ),
                           float('inf'),
                           dtype=torch.float32,
                           device=dev)
    valid = labels >= 0
    if p and bool(valid.any()):
        pts = valid.nonzero().squeeze(1)
        lab = labels[pts]
        diff = desc[pts] - centroids[lab]
        dist = (diff * diff).sum(1)
        keep = torch.isfinite(dist)
        pts, lab, dist = pts[keep], lab[keep], dist[keep]
        key = image_ids[pts] * c + lab
        best_dist.scatter_reduce_(0, key, dist, reduce='amin')
        is_best = dist == best_dist[key]
        best_idx.scatter_reduce_(
            0, key[is_best], pts[is_best], reduce='amin')
    best_idx[best_idx == p] = -1
    indices = best_idx.view(num_images, c).to(out_dev)
    if return_distances:
        return indices, best_dist.view(num_images, c).to(out_dev)
    return indices


def image_exemplars(descriptors: Tensor,
                    centroids: Tensor,
                    valid: Optional[Tensor] = None
                    ) -> Tuple[Tensor, Tensor]:
    """Per image, one exemplar point for each cluster (inference).

    Every point goes to its nearest centroid (:func:`assign_to_centroids`,
    NaN centroids are never chosen); per image and cluster the point
    nearest to the centroid is kept (:func:`exemplar_assignment`). This is
    how discovered landmarks are read off at test time (paper Sec. 3.1 and
    3.2).

    Args:
        descriptors (Tensor): (B, N, D) point descriptors of B images.
        centroids (Tensor): (C, D) cluster centres (NaN rows: missing).
        valid (Tensor, optional): (B, N) bool; invalid points are ignored.

    Returns:
        tuple[Tensor, Tensor]: ``indices`` (B, C) int64 into the N points of
        each image, -1 where the image has no point of that cluster, and the
        squared ``distances`` (B, C) of the exemplars (``inf`` where none).
    """
    bsz, n, dim = descriptors.shape
    if centroids.shape[-1] != dim:
        raise ValueError(
            f'centroids have dimension {centroids.shape[-1]} but the '
            f'descriptors {dim}: were they fitted with another model?')
    flat = descriptors.reshape(-1, dim).float()
    cents = centroids.to(flat.device).float()
    labels, _ = assign_to_centroids(flat, cents, device=flat.device)
    if valid is not None:
        labels = labels.masked_fill(~valid.reshape(-1), -1)
    image_ids = torch.arange(bsz, device=flat.device).repeat_interleave(n)
    idx, dist = exemplar_assignment(
        flat,
        image_ids,
        labels,
        cents,
        num_images=bsz,
        return_distances=True,
        device=flat.device)
    idx = idx.to(descriptors.device)
    # exemplar_assignment indexes the flattened points: back to per image
    offsets = (torch.arange(bsz, device=idx.device) * n)[:, None]
    idx = torch.where(idx >= 0, idx - offsets, idx)
    return idx, dist.to(descriptors.device)
