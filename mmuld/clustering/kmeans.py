# Copyright (c) mmuld contributors. All rights reserved.
"""Torch K-means (Lloyd and mini-batch) with k-means++ initialisation.

The implementation works on CPU and GPU, computes distances in chunks so that
millions of points fit in memory, re-seeds empty clusters and is fully
reproducible for a fixed ``seed`` on a given device.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from torch import Tensor

ArrayLike = Union[Tensor, np.ndarray]

# Maximum number of elements of the (chunk, k) distance matrix computed at
# once when ``batch_size`` is not given (2**24 floats = 64 MB).
_MAX_DIST_ELEMENTS = 2**24


@dataclass
class KMeansResult:
    """Result of :func:`kmeans`.

    Attributes:
        centroids (Tensor): Cluster centres, shape (k, D), float32.
        labels (Tensor): Index of the nearest centroid of every point, shape
            (N,), int64.
        inertia (float): Sum of squared distances of the points to their
            nearest centroid.
        n_iter (int): Number of iterations (Lloyd steps or mini-batch epochs)
            that were run.
        n_reseeds (int): Number of times an empty cluster was re-seeded.
        converged (bool): Whether the tolerance criterion was met before
            ``n_iter`` iterations.
    """
    centroids: Tensor
    labels: Tensor
    inertia: float
    n_iter: int
    n_reseeds: int = 0
    converged: bool = False


def resolve_device(device: Optional[Union[str, torch.device]],
                   x: Optional[ArrayLike] = None) -> torch.device:
    """Pick the compute device.

    Args:
        device (str | torch.device, optional): Requested device. ``None``
            selects CUDA when available, else the device of ``x`` (CPU for
            numpy arrays).
        x (Tensor | ndarray, optional): Input data.

    Returns:
        torch.device: The device to compute on.
    """
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device('cuda')
    if isinstance(x, Tensor):
        return x.device
    return torch.device('cpu')


def as_points(x: ArrayLike,
              name: str = 'x',
              device: Optional[torch.device] = None) -> Tensor:
    """Convert points to a finite 2-D float32 tensor.

    Args:
        x (Tensor | ndarray): Points of shape (N, D).
        name (str): Name used in error messages.
        device (torch.device, optional): Target device.

    Returns:
        Tensor: float32 tensor of shape (N, D) on ``device``.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor or numpy.ndarray, '
                        f'got {type(x).__name__}')
    if x.ndim != 2:
        raise ValueError(f'{name} must have shape (N, D), got '
                         f'{tuple(x.shape)}')
    if x.is_complex():
        raise ValueError(f'{name} must be real-valued')
    x = x.detach().to(device=device, dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError(f'{name} contains NaN or infinite values')
    return x.contiguous()


def _chunk_size(n: int, k: int, batch_size: Optional[int]) -> int:
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        return int(batch_size)
    return max(1, min(n, _MAX_DIST_ELEMENTS // max(k, 1)))


def _sq_dists(x: Tensor, x_sq: Tensor, c: Tensor, c_sq: Tensor) -> Tensor:
    """Squared euclidean distances (n, k) via ||x||^2 - 2 x.c + ||c||^2."""
    d = torch.addmm(c_sq.unsqueeze(0), x, c.t(), beta=1.0, alpha=-2.0)
    d.add_(x_sq.unsqueeze(1))
    return d.clamp_(min=0)


def _assign(x: Tensor, x_sq: Tensor, centroids: Tensor,
            chunk: int) -> Tuple[Tensor, Tensor]:
    """Nearest centroid (labels, squared distances) of every point."""
    n = x.shape[0]
    labels = torch.empty(n, dtype=torch.long, device=x.device)
    dists = torch.empty(n, dtype=torch.float32, device=x.device)
    c_sq = (centroids * centroids).sum(1)
    for s in range(0, n, chunk):
        d = _sq_dists(x[s:s + chunk], x_sq[s:s + chunk], centroids, c_sq)
        mind, lab = d.min(dim=1)
        labels[s:s + chunk] = lab
        dists[s:s + chunk] = mind
    return labels, dists


def _segment_sum(x: Tensor, labels: Tensor, k: int) -> Tensor:
    """Per-cluster sum of the rows of ``x`` (deterministic on CUDA too)."""
    if x.is_cuda:
        # index_add_ uses float atomics on CUDA (non deterministic): use a
        # one-hot matmul instead.
        onehot = torch.zeros(k, x.shape[0], dtype=x.dtype, device=x.device)
        onehot[labels, torch.arange(x.shape[0], device=x.device)] = 1
        return onehot @ x
    out = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    return out.index_add_(0, labels, x)


def assign_to_centroids(x: ArrayLike,
                        centroids: ArrayLike,
                        batch_size: Optional[int] = None,
                        squared: bool = True,
                        device: Optional[Union[str, torch.device]] = None
                        ) -> Tuple[Tensor, Tensor]:
    """Nearest-centroid query.

    Args:
        x (Tensor | ndarray): Query points of shape (N, D).
        centroids (Tensor | ndarray): Centroids of shape (k, D). Rows with
            NaN (missing clusters) are never selected.
        batch_size (int, optional): Number of points per distance chunk.
            Defaults to an automatic size bounded in memory.
        squared (bool): Return squared euclidean distances. Defaults to True.
        device (str | torch.device, optional): Compute device (see
            :func:`resolve_device`).

    Returns:
        tuple[Tensor, Tensor]: ``labels`` (N,) int64 and ``distances`` (N,)
        float32, on the compute device.
    """
    dev = resolve_device(device, x)
    x = as_points(x, 'x', dev)
    if isinstance(centroids, np.ndarray):
        centroids = torch.from_numpy(np.ascontiguousarray(centroids))
    centroids = centroids.to(device=dev, dtype=torch.float32)
    if centroids.ndim != 2 or centroids.shape[1] != x.shape[1]:
        raise ValueError(f'centroids must have shape (k, {x.shape[1]}), got '
                         f'{tuple(centroids.shape)}')
    valid = torch.isfinite(centroids).all(1)
    if not valid.any():
        raise ValueError('centroids contains no finite row')
    valid_idx = valid.nonzero().squeeze(1)
    x_sq = (x * x).sum(1)
    chunk = _chunk_size(x.shape[0], int(valid_idx.numel()), batch_size)
    labels, dists = _assign(x, x_sq, centroids[valid_idx].contiguous(), chunk)
    labels = valid_idx[labels]
    if not squared:
        dists = dists.sqrt()
    return labels, dists


def kmeans_plusplus(x: Tensor,
                    k: int,
                    generator: torch.Generator,
                    n_local_trials: Optional[int] = None) -> Tensor:
    """Greedy k-means++ seeding (as in scikit-learn).

    Args:
        x (Tensor): Points (n, D) float32.
        k (int): Number of centres.
        generator (torch.Generator): CPU random generator.
        n_local_trials (int, optional): Candidates tried per centre.
            Defaults to ``2 + int(log(k))``.

    Returns:
        Tensor: Initial centres of shape (k, D).
    """
    n = x.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(k))
    x_sq = (x * x).sum(1)
    centers = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    first = int(torch.randint(n, (1, ), generator=generator))
    centers[0] = x[first]
    closest = _sq_dists(x, x_sq, centers[:1], x_sq[first:first + 1])[:, 0]
    for c in range(1, k):
        total = closest.sum()
        if total <= 0:
            # all points coincide with existing centres: pick at random
            cand = torch.randint(n, (n_local_trials, ), generator=generator)
        else:
            probs = (closest / total).double().cpu()
            cand = torch.multinomial(
                probs, n_local_trials, replacement=True, generator=generator)
        cand = cand.to(x.device)
        d = _sq_dists(x, x_sq, x[cand], x_sq[cand])  # (n, trials)
        d = torch.minimum(d, closest.unsqueeze(1))
        best = int(d.sum(0).argmin())
        centers[c] = x[cand[best]]
        closest = d[:, best]
    return centers


def _init_centroids(x: Tensor, k: int, init: Union[str, ArrayLike],
                    init_size: Optional[int],
                    generator: torch.Generator) -> Tensor:
    n, dim = x.shape
    if not isinstance(init, str):
        c = init
        if isinstance(c, np.ndarray):
            c = torch.from_numpy(np.ascontiguousarray(c))
        c = c.to(device=x.device, dtype=torch.float32)
        if tuple(c.shape) != (k, dim):
            raise ValueError(f'init centroids must have shape ({k}, {dim}), '
                             f'got {tuple(c.shape)}')
        if not torch.isfinite(c).all():
            raise ValueError('init centroids contain NaN or infinite values')
        return c.clone()
    if init == 'random':
        idx = torch.randperm(n, generator=generator)[:k].to(x.device)
        return x[idx].clone()
    if init == 'k-means++':
        if init_size is None:
            init_size = max(100 * k, 20000)
        if n > init_size:
            sub = torch.randperm(n, generator=generator)[:init_size]
            xs = x[sub.to(x.device)]
        else:
            xs = x
        return kmeans_plusplus(xs, k, generator)
    raise ValueError(f"init must be 'k-means++', 'random' or an array of "
                     f'shape (k, D), got {init!r}')


def _reseed_empty(centroids: Tensor, counts: Tensor, dists: Tensor,
                  x: Tensor) -> int:
    """Move empty clusters onto the points farthest from their centroid.

    Empty clusters are handled one after the other (farthest-first): once a
    point becomes a new centre, the distances are updated so that the next
    empty cluster goes to a point far from it too.

    Args:
        centroids (Tensor): Centroids (k, D), modified in place.
        counts (Tensor): Points per cluster (k,).
        dists (Tensor): Squared distance of every point of ``x`` to its
            (current) centroid.
        x (Tensor): Points (n, D).

    Returns:
        int: Number of re-seeded clusters.
    """
    empty = (counts == 0).nonzero().squeeze(1).tolist()
    if not empty:
        return 0
    dists = dists.clone()
    for c in empty:
        far = int(dists.argmax())
        centroids[c] = x[far]
        d_new = ((x - x[far])**2).sum(1)
        torch.minimum(dists, d_new, out=dists)
    return len(empty)


def kmeans(x: ArrayLike,
           k: int,
           n_iter: int = 30,
           tol: float = 1e-4,
           seed: int = 0,
           init: Union[str, ArrayLike] = 'k-means++',
           batch_size: Optional[int] = None,
           minibatch: bool = False,
           init_size: Optional[int] = None,
           device: Optional[Union[str, torch.device]] = None,
           verbose: bool = False,
           n_init: int = 1) -> KMeansResult:
    """K-means clustering in torch.

    Lloyd mode (default): every iteration assigns all points to their
    nearest centroid (distances computed in chunks of ``batch_size``
    points) and moves each centroid to the mean of its points
    (``index_add_``). Mini-batch mode (``minibatch=True``) follows
    scikit-learn's ``MiniBatchKMeans``: for every random batch of
    ``batch_size`` points each centroid moves towards the batch mean of its
    points with a per-centre learning rate ``1 / count``; ``n_iter`` then
    counts epochs (passes over the data). Empty clusters are re-seeded with
    the points farthest from their centroid. Iterations stop when the total
    squared centroid shift falls below ``tol * mean(var(x, axis=0))`` (the
    scikit-learn criterion). Labels and inertia of the result always
    correspond to the returned centroids.

    Results are identical for a fixed ``seed`` on a given device (on CUDA the
    centroid update uses a one-hot matmul instead of atomic adds).

    Args:
        x (Tensor | ndarray): Points of shape (N, D).
        k (int): Number of clusters, ``1 <= k <= N``.
        n_iter (int): Maximum number of Lloyd iterations (epochs in
            mini-batch mode). Defaults to 30.
        tol (float): Relative tolerance on the centroid shift. Defaults to
            1e-4.
        seed (int): Random seed. Defaults to 0.
        init (str | Tensor | ndarray): ``'k-means++'`` (computed on a random
            subsample of ``init_size`` points for large N), ``'random'`` or
            initial centroids of shape (k, D). Defaults to ``'k-means++'``.
        batch_size (int, optional): Lloyd mode: points per distance chunk
            (default: automatic, bounded to 2**24 distances per chunk).
            Mini-batch mode: mini-batch size (default 1024).
        minibatch (bool): Use mini-batch updates. Defaults to False.
        init_size (int, optional): Subsample size for k-means++. Defaults to
            ``max(100 * k, 20000)``.
        device (str | torch.device, optional): Compute device; ``None``
            selects CUDA when available.
        verbose (bool): Log the inertia of every iteration. Defaults to
            False.
        n_init (int): Number of runs from different seeds (``seed``,
            ``seed + 1``, ...); the one with the lowest inertia is returned
            (scikit-learn's ``n_init``, faiss' ``nredo``). Defaults to 1.

    Returns:
        KMeansResult: centroids (k, D), labels (N,), inertia, n_iter,
        n_reseeds, converged. Tensors live on the compute device.
    """
    if not isinstance(n_init, (int, np.integer)) or n_init < 1:
        raise ValueError(f'n_init must be a positive integer, got {n_init!r}')
    if n_init > 1:
        if not isinstance(init, str):
            raise ValueError('n_init > 1 needs a random init (k-means++ or '
                             'random), not given centroids')
        runs = (kmeans(x, k, n_iter, tol, int(seed) + i, init, batch_size,
                       minibatch, init_size, device, verbose)
                for i in range(int(n_init)))
        return min(runs, key=lambda r: float(r.inertia))
    dev = resolve_device(device, x)
    x = as_points(x, 'x', dev)
    n = x.shape[0]
    if n == 0:
        raise ValueError('x is empty: kmeans needs at least one point')
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f'k must be a positive integer, got {k!r}')
    k = int(k)
    if k > n:
        raise ValueError(f'k={k} clusters requested but x only has {n} '
                         'points (k must be <= N)')
    if n_iter < 1:
        raise ValueError(f'n_iter must be >= 1, got {n_iter}')
    generator = torch.Generator().manual_seed(int(seed))
    centroids = _init_centroids(x, k, init, init_size, generator)
    tol_abs = float(tol) * float(x.var(0, unbiased=False).mean())
    x_sq = (x * x).sum(1)
    logger = MMLogger.get_current_instance() if verbose else None

    n_reseeds = 0
    converged = False
    it = 0
    if minibatch:
        bs = 1024 if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f'batch_size must be >= 1, got {bs}')
        counts = torch.zeros(k, dtype=torch.float32, device=dev)
        for it in range(1, n_iter + 1):
            old = centroids.clone()
            perm = torch.randperm(n, generator=generator).to(dev)
            for s in range(0, n, bs):
                idx = perm[s:s + bs]
                xb = x[idx]
                lab, dist = _assign(xb, x_sq[idx], centroids, xb.shape[0])
                bcount = torch.bincount(lab, minlength=k).float()
                bsum = _segment_sum(xb, lab, k)
                new_counts = counts + bcount
                hit = bcount > 0
                # c <- (c * n_old + sum_batch) / n_new
                centroids[hit] = (
                    centroids[hit] * counts[hit, None] +
                    bsum[hit]) / new_counts[hit, None]
                counts = new_counts
            if bool((counts == 0).any()):
                _, dist = _assign(x, x_sq, centroids, _chunk_size(n, k, None))
                n_reseeds += _reseed_empty(centroids, counts, dist, x)
            shift = float(((centroids - old)**2).sum())
            if logger is not None:
                print_log(f'kmeans epoch {it}: centroid shift {shift:.6g}',
                          logger)
            if shift <= tol_abs:
                converged = True
                break
        chunk = _chunk_size(n, k, None)
    else:
        chunk = _chunk_size(n, k, batch_size)
        for it in range(1, n_iter + 1):
            labels, dists = _assign(x, x_sq, centroids, chunk)
            sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=dev)
            for s in range(0, n, chunk):
                sums += _segment_sum(x[s:s + chunk], labels[s:s + chunk],
                                     k).double()
            counts = torch.bincount(labels, minlength=k)
            new = centroids.clone()
            nonempty = counts > 0
            new[nonempty] = (sums[nonempty] /
                             counts[nonempty, None].double()).float()
            n_reseeds += _reseed_empty(new, counts, dists, x)
            shift = float(((new - centroids)**2).sum())
            centroids = new
            if logger is not None:
                print_log(
                    f'kmeans iter {it}: inertia '
                    f'{float(dists.double().sum()):.6g}, shift {shift:.6g}',
                    logger)
            if shift <= tol_abs:
                converged = True
                break
    labels, dists = _assign(x, x_sq, centroids, chunk)
    inertia = float(dists.double().sum())
    return KMeansResult(
        centroids=centroids,
        labels=labels,
        inertia=inertia,
        n_iter=it,
        n_reseeds=n_reseeds,
        converged=converged)
