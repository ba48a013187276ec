# Copyright (c) mmuld contributors. All rights reserved.
"""Functional margin contrastive loss over all pairs of a batch."""
from typing import Optional

import torch
from torch import Tensor


def pairwise_distances(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distances between all rows of ``x``.

    Uses ``|a|^2 + |b|^2 - 2ab`` (memory O(P^2), not O(P^2 D)); the squared
    distance is clamped at ``eps`` before the square root so that the
    gradient stays finite for identical rows.

    Args:
        x (Tensor): ``(P, D)`` vectors.
        eps (float): Lower clamp of the squared distance.

    Returns:
        Tensor: ``(P, P)`` distances.
    """
    sq = (x * x).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())
    return d2.clamp(min=eps).sqrt()


def pairwise_contrastive_loss(features: Tensor,
                              labels: Tensor,
                              margin: float,
                              squared: bool = False,
                              valid: Optional[Tensor] = None,
                              max_samples: Optional[int] = None,
                              ignore_index: int = -1) -> Tensor:
    """Margin contrastive loss averaged over all valid pairs.

    For every unordered pair ``(i, j)``, ``i < j``, of valid samples with
    distance ``d_ij = ||x_i - x_j||``::

        pos = mean_{labels_i == labels_j} d_ij              (d_ij^2 if squared)
        neg = mean_{labels_i != labels_j} max(0, m - d_ij)  (^2 if squared)
        loss = pos + neg

    i.e. the positive and negative terms of Eq. 3 of the paper, each averaged
    over the pairs of its kind present in the batch (the expectation of
    Eq. 3 under uniform sampling of ``j'`` and ``j''``). A term with no pair
    is 0. If no pair at all exists the result is ``0 * features.sum()``, so
    it stays connected to the graph.

    Args:
        features (Tensor): ``(P, D)`` features.
        labels (Tensor): ``(P,)`` integer labels.
        margin (float): Margin ``m`` of the negative hinge.
        squared (bool): Use squared distance / squared hinge (Hadsell et
            al.) instead of the plain distance / hinge. Defaults to False.
        valid (Tensor, optional): ``(P,)`` bool mask of samples to use.
        max_samples (int, optional): If more valid samples exist, a random
            subset of this size is used (memory is O(P^2)).
        ignore_index (int): Samples with this label are ignored.

    Returns:
        Tensor: Scalar loss.
    """
    if features.dim() != 2:
        raise ValueError(
            f'features must have shape (P, D), got {tuple(features.shape)}')
    if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f'labels must have shape ({features.shape[0]},), got'
                         f' {tuple(labels.shape)}')
    if margin < 0:
        raise ValueError(f'margin must be >= 0, got {margin}')
    keep = labels != ignore_index
    if valid is not None:
        if valid.shape != labels.shape:
            raise ValueError(f'valid must have shape {tuple(labels.shape)}, '
                             f'got {tuple(valid.shape)}')
        keep = keep & valid.bool()
    idx = keep.nonzero(as_tuple=True)[0]
    if max_samples is not None and idx.numel() > max_samples:
        perm = torch.randperm(idx.numel(), device=idx.device)[:max_samples]
        idx = idx[perm]
    zero = features.sum() * 0.0
    if idx.numel() < 2:
        return zero
    x, y = features[idx], labels[idx]
    dist = pairwise_distances(x)
    n = x.shape[0]
    upper = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
    same = (y[:, None] == y[None, :]) & upper
    diff = (y[:, None] != y[None, :]) & upper
    pos_d = dist if not squared else dist.pow(2)
    hinge = (margin - dist).clamp(min=0)
    neg_d = hinge if not squared else hinge.pow(2)
    # each term: the mean over its pairs, 0 without any (no host sync)
    loss = zero
    for mask, term in ((same, pos_d), (diff, neg_d)):
        count = mask.sum().clamp(min=1).to(term.dtype)
        loss = loss + torch.where(mask, term, term.new_zeros(())).sum() / count
    return loss
