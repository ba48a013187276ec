# Copyright (c) mmuld contributors. All rights reserved.
"""Landmarks as the peaks of centroid similarity maps.

A landmark is a cluster centroid in descriptor space; in an image it lies
where the descriptor map is most similar to the centroid. Taking that peak
over every map cell of the object's region (as ZeroShot takes random pixels
of the RoI) instead of over the detector's strongest cells means that a
landmark is found wherever its part is, not only where the detector fired,
and the peak's shape says how well the landmark is defined: one sharp peak
for a part, a plateau for a region (a cheek, the background), two peaks
for a part the descriptors confuse with another (the two eyes).
"""
from typing import Dict, Optional

import torch
from torch import Tensor


def similarity_peaks(desc_map: Tensor,
                     centroids: Tensor,
                     stride: float,
                     radius: float,
                     border: int = 0,
                     mask: Optional[Tensor] = None,
                     with_descriptors: bool = False) -> Dict[str, Tensor]:
    """Peak of each centroid's similarity map, refined, and its margin.

    Args:
        desc_map (Tensor): ``(B, D, h, w)`` L2-normalised descriptors.
        centroids (Tensor): ``(C, D)`` shared by the batch, or ``(B, C, D)``
            one set per image (e.g. its pose cluster's); NaN rows (missing
            clusters) never peak.
        stride (float): Map stride in input pixels.
        radius (float): The margin compares the peak with the best cell
            farther than this (input pixels) from it.
        border (int): Cells closer than this to the map edge are skipped.
        mask (Tensor, optional): ``(B, h, w)`` bool, cells that may hold a
            landmark (e.g. inside the RoI).
        with_descriptors (bool): Also return the descriptor of the peak
            cell.

    Returns:
        dict: ``keypoints`` (B, C, 2) input pixels (the peak cell refined by
        a parabola fit of the similarity), ``peak`` (B, C) cosine
        similarity at the peak cell, ``margin`` (B, C) peak minus the best
        similarity outside ``radius`` (small or negative: no single peak)
        and, if asked, ``descriptors`` (B, C, D).
    """
    # mmuld.models imports mmuld.clustering: import at call time
    from mmuld.models.utils.keypoint_ops import refine_subpixel
    b, d, h, w = desc_map.shape
    cents = torch.nan_to_num(centroids.to(desc_map), nan=0.0)
    if cents.dim() == 2:
        cents = cents[None].expand(b, -1, -1)
    c = cents.shape[1]
    sim = torch.einsum('bdhw,bcd->bchw', desc_map, cents)
    allowed = torch.ones(b, h, w, dtype=torch.bool, device=sim.device)
    if border > 0:
        allowed[:, :border] = False
        allowed[:, h - border:] = False
        allowed[:, :, :border] = False
        allowed[:, :, w - border:] = False
    if mask is not None:
        allowed &= mask.to(sim.device)
    # an image without an allowed cell keeps them all rather than none
    allowed |= ~allowed.flatten(1).any(1)[:, None, None]
    neg = torch.finfo(sim.dtype).min
    flat = sim.flatten(2).masked_fill(~allowed.flatten(1)[:, None], neg)
    peak, idx = flat.max(-1)
    cells = torch.stack([idx % w, torch.div(idx, w, rounding_mode='floor')],
                        -1).to(sim.dtype)
    ys, xs = torch.meshgrid(torch.arange(h, device=sim.device),
                            torch.arange(w, device=sim.device),
                            indexing='ij')
    grid = torch.stack([xs, ys], -1).reshape(1, 1, h * w, 2).to(sim.dtype)
    near = (grid - cells[:, :, None]).norm(dim=-1) * stride <= radius
    far = flat.masked_fill(near, neg).max(-1).values
    margin = peak - torch.where(far > neg, far, peak)
    refined = refine_subpixel(sim.reshape(b * c, 1, h, w),
                              cells.reshape(b * c, 1, 2)).reshape(b, c, 2)
    missing = ~torch.isfinite(centroids).all(-1)
    if missing.dim() == 1:
        missing = missing[None].expand(b, -1)
    out = dict(
        keypoints=(refined + 0.5) * stride - 0.5,
        peak=peak.masked_fill(missing, 0.0),
        margin=margin.masked_fill(missing, 0.0),
        valid=~missing)
    if with_descriptors:
        out['descriptors'] = desc_map.flatten(2).transpose(1, 2).gather(
            1, idx[..., None].expand(-1, -1, d))
    return out


def select_peaked_clusters(keypoints: Tensor, margin: Tensor, k: int,
                           separation: float) -> Dict[str, Tensor]:
    """Keep K of M centroids: sharp single peaks at distinct places.

    Centroids are ranked by their mean margin over the images (a part has
    one sharp peak in every image; a region or a confused part has none).
    Going down the ranking, a centroid is kept unless its peaks lie, in
    the median image, closer than ``separation`` to the peaks of one
    already kept (the same part); when fewer than K distinct centroids
    exist the best skipped ones fill the rest.

    Args:
        keypoints (Tensor): ``(N, M, 2)`` peak positions of every image and
            centroid.
        margin (Tensor): ``(N, M)`` peak margins.
        k (int): K.
        separation (float): Distinct parts are at least this far apart
            (input pixels, median over the images).

    Returns:
        dict: ``indices`` (K,) of the kept centroids, best first, ``score``
        (M,) the mean margins, ``duplicates`` (int) centroids skipped as
        the same part as a kept one and ``relaxed`` (int) duplicates kept
        to reach K.
    """
    n, m = margin.shape
    if not 1 <= k <= m:
        raise ValueError(f'cannot keep {k} of {m} clusters')
    score = margin.clamp(min=0).mean(0)
    order = torch.argsort(score, descending=True, stable=True).tolist()
    kept, skipped = [], []
    for c in order:
        if len(kept) == k:
            break
        gaps = [(keypoints[:, c] - keypoints[:, a]).norm(dim=-1).median()
                for a in kept]
        if any(g < separation for g in gaps):
            skipped.append(c)
        else:
            kept.append(c)
    relaxed = max(0, k - len(kept))
    kept += skipped[:relaxed]
    return dict(
        indices=torch.as_tensor(kept, dtype=torch.long),
        score=score,
        duplicates=len(skipped) - relaxed,
        relaxed=relaxed)
