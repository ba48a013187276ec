# Copyright (c) mmuld contributors. All rights reserved.
"""Landmark decoding shared by the ULD and ZeroShot estimators.

K cluster centroids (one set per pose cluster with two-stage clustering)
turn an image's candidates, or its whole descriptor map, into K identified
landmarks:

* ``'exemplar'`` (the paper): every candidate goes to its nearest
  centroid; per centroid, the candidate nearest to it is the landmark.
  Candidates at map-cell centres (dense) are refined on the centroid's
  similarity map (a parabola fit, or a soft-argmax with a temperature).
* ``'peaks'``: a landmark is the peak of its centroid's similarity over
  every map cell (:func:`similarity_peaks`).
"""
from typing import Dict, Optional

import torch
from torch import Tensor

from ..utils.keypoint_ops import refine_subpixel
from .utils import gather_landmarks

DECODE_MODES = ('exemplar', 'peaks')


class LandmarkDecoder:
    """K landmarks per image from centroids.

    Args:
        stride (float): Map stride in input pixels.
        mode (str): ``'exemplar'`` or ``'peaks'`` (module docstring).
        border (int): Map cells at the edge that hold no peak.
        softargmax_temperature (float, optional): Refine dense exemplars by
            a soft-argmax of the similarity (None: parabola fit).
    """

    def __init__(self,
                 stride: float,
                 mode: str = 'exemplar',
                 border: int = 1,
                 softargmax_temperature: Optional[float] = None):
        if mode not in DECODE_MODES:
            raise ValueError(f'decode must be one of {DECODE_MODES}, got '
                             f'{mode!r}')
        self.stride = float(stride)
        self.mode = mode
        self.border = border
        self.softargmax_temperature = softargmax_temperature

    def __call__(self,
                 centroids: Tensor,
                 keypoints: Tensor,
                 descriptors: Tensor,
                 valid: Optional[Tensor],
                 pose: Optional[Tensor] = None,
                 scores: Optional[Tensor] = None,
                 desc_map: Optional[Tensor] = None,
                 refine: bool = False,
                 mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Decode a batch.

        Args:
            centroids (Tensor): (Q, K, D) landmark centroids (Q = 1 without
                pose clusters).
            keypoints (Tensor): (B, N, 2) candidates, input pixels.
            descriptors (Tensor): (B, N, D) their descriptors.
            valid (Tensor, optional): (B, N) bool (None: all).
            pose (Tensor, optional): (B,) pose cluster of each image
                (default 0).
            scores (Tensor, optional): (B, N) candidate scores; without
                them an exemplar's score is ``exp(-d^2)`` of its squared
                distance to the centroid.
            desc_map (Tensor, optional): (B, D, h, w) descriptors
                (``'peaks'`` and ``refine``).
            refine (bool): Refine exemplars on the similarity map (for
                candidates at map-cell centres).
            mask (Tensor, optional): (B, h, w) bool, the cells that may
                hold a peak (``'peaks'``; None: every cell off the border).

        Returns:
            dict: ``keypoints`` (B, K, 2) input pixels, ``scores`` (B, K),
            ``visible`` (B, K) in {0, 1}, ``descriptors`` (B, K, D) and
            ``pose_labels`` (B,).
        """
        bsz = keypoints.shape[0]
        if valid is None:
            valid = keypoints.new_ones(keypoints.shape[:2], dtype=torch.bool)
        if pose is None:
            pose = torch.zeros(bsz, dtype=torch.long,
                               device=keypoints.device)
        if self.mode == 'peaks':
            return self.peaks(desc_map, centroids[pose], pose, mask)
        from mmuld.clustering import image_exemplars
        k = centroids.shape[1]
        idx = torch.empty((bsz, k), dtype=torch.long, device=keypoints.device)
        dist = torch.empty((bsz, k), device=keypoints.device)
        for q in pose.unique():
            sel = pose == q
            idx[sel], d = image_exemplars(descriptors[sel], centroids[q],
                                          valid[sel])
            dist[sel] = d.to(dist)
        per_point = dict(keypoints=keypoints, descriptors=descriptors.float())
        if scores is not None:
            per_point['scores'] = scores
        res = gather_landmarks(idx, **per_point)
        if scores is None:
            found = idx >= 0
            res['scores'] = torch.exp(-dist.masked_fill(~found, 0.0)) * found
        res['pose_labels'] = pose
        if refine and desc_map is not None:
            res['keypoints'] = self.refine(
                res['keypoints'], desc_map,
                centroids[pose].to(desc_map.dtype))
        return res

    @staticmethod
    def first_k(k: int, keypoints: Tensor, scores: Tensor,
                descriptors: Tensor, valid: Tensor) -> Dict[str, Tensor]:
        """Without centroids (before the first clustering round): the
        first K candidates (the highest-scoring ones, as candidates come
        sorted by score), unidentified.

        Returns:
            dict: as :meth:`__call__`, all in pose cluster 0.
        """
        bsz, n = keypoints.shape[0], min(k, keypoints.shape[1])
        dev = keypoints.device
        idx = torch.full((bsz, k), -1, dtype=torch.long, device=dev)
        idx[:, :n] = torch.where(valid[:, :n], torch.arange(n, device=dev),
                                 -1)
        res = gather_landmarks(idx, keypoints=keypoints, scores=scores,
                               descriptors=descriptors)
        res['pose_labels'] = torch.zeros(bsz, dtype=torch.long, device=dev)
        return res

    def peaks(self, desc_map: Tensor, centroids: Tensor, pose: Tensor,
              mask: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """``'peaks'``: each centroid's similarity peak over the map.

        Args:
            desc_map (Tensor): (B, D, h, w) descriptors.
            centroids (Tensor): (B, K, D) each image's centroids.
            pose (Tensor): (B,) pose clusters (returned as they are).
            mask (Tensor, optional): (B, h, w) bool, cells that may hold a
                peak.

        Returns:
            dict: as :meth:`__call__`; a landmark's score is its peak
            similarity.
        """
        from mmuld.clustering.dense_decoding import similarity_peaks
        res = similarity_peaks(desc_map, centroids.to(desc_map.dtype),
                               self.stride, radius=self.stride,
                               border=self.border, mask=mask,
                               with_descriptors=True)
        return dict(keypoints=res['keypoints'], scores=res['peak'],
                    visible=res['valid'].float(),
                    descriptors=res['descriptors'], pose_labels=pose)

    def refine(self, kpts: Tensor, desc_map: Tensor,
               centroids: Tensor) -> Tensor:
        """Landmark positions from each centroid's similarity map.

        Dense candidates sit at map-cell centres, and the exemplar cell is
        only the cell nearest the centroid: where self-training has made
        the descriptors of a whole part alike, that cell jumps around inside
        the part from image to image. By default a parabola fit of the
        similarity around the exemplar cell refines it (as
        :func:`refine_subpixel` does for heatmap peaks). With a
        ``softargmax_temperature`` T the landmark is instead the soft-argmax
        of the cosine similarity to its centroid: steadier, but it averages
        look-alike parts (both eyes) into a point between them;
        docs/methods.md has the measurements.

        Args:
            kpts (Tensor): (B, K, 2) landmarks in input pixels.
            desc_map (Tensor): (B, D, h, w) descriptors.
            centroids (Tensor): (B, K, D) centroid of each landmark.

        Returns:
            Tensor: (B, K, 2) refined landmarks in input pixels.
        """
        b, k, _ = kpts.shape
        sim = torch.einsum('bdhw,bkd->bkhw', desc_map,
                           torch.nan_to_num(centroids))
        tau = self.softargmax_temperature
        if tau:
            h, w = sim.shape[-2:]
            prob = (sim.flatten(2) / tau).softmax(-1)
            ys, xs = torch.meshgrid(
                torch.arange(h, dtype=sim.dtype, device=sim.device),
                torch.arange(w, dtype=sim.dtype, device=sim.device),
                indexing='ij')
            grid = torch.stack([xs.flatten(), ys.flatten()], -1)
            return (prob @ grid + 0.5) * self.stride - 0.5
        cells = (kpts + 0.5) / self.stride - 0.5
        ref = refine_subpixel(sim.reshape(b * k, 1, *sim.shape[-2:]),
                              cells.reshape(b * k, 1, 2).round())
        return (ref.reshape(b, k, 2) + 0.5) * self.stride - 0.5
