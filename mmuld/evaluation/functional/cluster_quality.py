# Copyright (c) mmuld contributors. All rights reserved.
"""Cluster quality of descriptors (D-ULD++ Table 2)."""
from typing import Optional

import numpy as np


def cluster_quality(descriptors: np.ndarray,
                    labels: np.ndarray,
                    max_silhouette_samples: Optional[int] = 5000,
                    seed: int = 0) -> dict:
    """Silhouette coefficient and Calinski-Harabasz index.

    Args:
        descriptors (np.ndarray): (N, D) features.
        labels (np.ndarray): (N,) cluster labels; negative = unassigned
            (ignored).
        max_silhouette_samples (int, optional): Random subsample size for
            the O(N^2) silhouette; None = all.
        seed (int): Subsampling seed.

    Returns:
        dict: ``silhouette`` and ``calinski_harabasz`` (NaN when fewer than
        2 clusters), ``num_clusters``, ``num_samples``.
    """
    from sklearn.metrics import calinski_harabasz_score, silhouette_score
    x = np.asarray(descriptors, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError('descriptors must be (N, D) and labels (N,), got '
                         f'{x.shape} and {y.shape}.')
    keep = y >= 0
    x, y = x[keep], y[keep]
    n_clusters = int(np.unique(y).size)
    out = dict(
        silhouette=float('nan'),
        calinski_harabasz=float('nan'),
        num_clusters=n_clusters,
        num_samples=int(y.size))
    if n_clusters < 2 or n_clusters >= y.size:
        return out
    out['calinski_harabasz'] = float(calinski_harabasz_score(x, y))
    sample = None
    if max_silhouette_samples is not None and y.size > max_silhouette_samples:
        sample = int(max_silhouette_samples)
    out['silhouette'] = float(
        silhouette_score(x, y, sample_size=sample, random_state=seed))
    return out
