# Copyright (c) mmuld contributors. All rights reserved.
"""The training state an :class:`ULDEstimator` keeps in its buffers."""
from typing import Dict, Optional

import torch
from torch import Tensor

from mmuld.clustering.pseudo_label_bank import (BANK_BUFFER_PREFIX,
                                                PseudoLabelBank)
from .utils import adopt_buffer_shapes

_CENTROID_BUFFERS = ('uld_centroids', 'uld_pose_centroids')


class ULDStateMixin:
    """Pseudo-labels and centroids of the last clustering round, as
    buffers, so that a checkpoint's ``state_dict`` restores them and
    suffices for inference.

    Buffers: the pseudo-label bank (``uld_pl_*``), the (Q', K, D) landmark
    centroids ``uld_centroids`` (Q' = 1 for plain K-means) and the (Q, Dz)
    pose centroids ``uld_pose_centroids`` (two-stage clustering only).
    """

    def _init_state(self) -> None:
        """Register the (empty) state buffers."""
        self.register_buffer('uld_centroids', torch.zeros(0, 0, 0))
        self.register_buffer('uld_pose_centroids', torch.zeros(0, 0))
        for name, value in PseudoLabelBank.empty_buffers().items():
            self.register_buffer(BANK_BUFFER_PREFIX + name, value)
        # host copies of the bank's round / iteration buffers (reading a
        # CUDA buffer every iteration would wait for the device)
        self._pl_scalars: Optional[Dict[str, int]] = None

    def set_pseudo_labels(self, bank: Optional[PseudoLabelBank]) -> None:
        """Store a round's pseudo-labels in the ``uld_pl_*`` buffers (None
        forgets them)."""
        values = PseudoLabelBank.empty_buffers() if bank is None \
            else bank.to_buffers()
        device = self.uld_centroids.device
        for name, value in values.items():
            setattr(self, BANK_BUFFER_PREFIX + name, value.to(device))
        self._pl_scalars = None if bank is None else dict(
            round=int(bank.round), iteration=int(bank.iteration))

    @property
    def pseudo_labels(self) -> Optional[PseudoLabelBank]:
        """PseudoLabelBank, optional: The pseudo-labels of the last
        clustering round (a view of the buffers), None before the first."""
        bank = PseudoLabelBank.from_buffers(
            dict(self.named_buffers(recurse=False)), BANK_BUFFER_PREFIX,
            self._pl_scalars)
        if bank is not None and self._pl_scalars is None:
            self._pl_scalars = dict(round=bank.round, iteration=bank.iteration)
        return bank

    def set_centroids(self, centroids: Tensor,
                      pose_centroids: Optional[Tensor] = None) -> None:
        """Store the (K, D) or (Q, K, D) landmark centroids and the (Q, Dz)
        pose centroids used at inference."""
        if centroids.dim() == 2:
            centroids = centroids[None]
        self.uld_centroids = centroids.detach().to(
            self.uld_centroids.device, torch.float32)
        if pose_centroids is None:
            pose_centroids = torch.zeros(0, 0)
        self.uld_pose_centroids = pose_centroids.detach().to(
            self.uld_centroids.device, torch.float32)

    def pose_of(self, codes: Optional[Tensor], batch_size: int,
                device: torch.device) -> Tensor:
        """(B,) pose cluster of each image: its code's nearest pose
        centroid (0 without two-stage clustering)."""
        pose = torch.zeros(batch_size, dtype=torch.long, device=device)
        if self.uld_pose_centroids.numel() and codes is not None:
            pose = torch.cdist(codes, self.uld_pose_centroids).argmin(1)
        return pose.clamp(max=max(self.uld_centroids.shape[0] - 1, 0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        bank = tuple(BANK_BUFFER_PREFIX + n
                     for n in PseudoLabelBank.empty_buffers())
        adopt_buffer_shapes(self, state_dict, prefix,
                            _CENTROID_BUFFERS + bank)
        self._pl_scalars = None  # read again from the loaded buffers
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
