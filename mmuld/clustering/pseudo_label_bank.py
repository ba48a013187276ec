# Copyright (c) mmuld contributors. All rights reserved.
"""Storage of the pseudo-labels of the training set.

A :class:`PseudoLabelBank` is what a clustering round produces (D-ULD
Sec. 3.2 and the two-stage clustering of D-ULD++ Sec. 3.3.2) and what the
self-training losses read: for every training image (indexed by the
dataset's ``sample_idx``) up to K keypoints with their landmark id, the
global cluster label r in [0, Q*K), the latent pose code phi and its pose
cluster u. Keypoints are (x, y) in input pixels of the model.

The model that trains on a bank owns it: :class:`ULDEstimator` keeps it as
buffers (:meth:`PseudoLabelBank.to_buffers`, names ``uld_pl_<field>``), so
that its ``state_dict``, and with it every checkpoint, holds the bank.
"""
from dataclasses import dataclass, fields
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor


#: prefix of the model buffers that hold a bank (``uld_pl_keypoints``, ...)
BANK_BUFFER_PREFIX = 'uld_pl_'


@dataclass
class PseudoLabelBank:
    """Pseudo-labels of one clustering round.

    Attributes:
        keypoints (Tensor): (N, K, 2) keypoints in input pixels; slot k is
            discovered landmark k.
        valid (Tensor): (N, K) bool, False where cluster k has no exemplar.
        labels (Tensor): (N, K) int64 global cluster label r (= u * K + k
            with two-stage clustering, = k otherwise); -1 where invalid.
        pose_labels (Tensor): (N,) int64 pose cluster u_j (0 without
            two-stage clustering).
        codes (Tensor, optional): (N, Dz) latent pose codes phi_j.
        round (int): Index of the clustering round that produced it.
        iteration (int): Training iteration at which it was produced.
        anchors (Tensor, optional): (N, K, 2) where the landmarks were
            chosen (the keypoints of the round that chose them, carried
            from round to round): later peak rounds re-estimate the
            centroids from the descriptors there
            (:func:`~mmuld.clustering.clustering_round.peak_pseudo_labels`).
    """

    keypoints: Tensor
    valid: Tensor
    labels: Tensor
    pose_labels: Tensor
    codes: Optional[Tensor] = None
    round: int = 0
    iteration: int = 0
    anchors: Optional[Tensor] = None

    def __post_init__(self) -> None:
        n, k = self.valid.shape
        if self.keypoints.shape != (n, k, 2):
            raise ValueError('keypoints must be (N, K, 2) with N, K of '
                             f'valid {tuple(self.valid.shape)}, got '
                             f'{tuple(self.keypoints.shape)}')
        if self.labels.shape != (n, k) or self.pose_labels.shape != (n, ):
            raise ValueError('labels must be (N, K) and pose_labels (N,)')
        if self.anchors is not None and self.anchors.shape != (n, k, 2):
            raise ValueError(f'anchors must be (N, K, 2) = ({n}, {k}, 2), '
                             f'got {tuple(self.anchors.shape)}')

    @property
    def num_images(self) -> int:
        return self.valid.shape[0]

    @property
    def num_landmarks(self) -> int:
        return self.valid.shape[1]

    def lookup(self, sample_idx: Sequence[int],
               device: torch.device) -> Dict[str, Tensor]:
        """Gather the pseudo-labels of a batch.

        Args:
            sample_idx (Sequence[int]): Dataset indices of the batch.
            device (torch.device): Device of the returned tensors.

        Returns:
            dict: ``keypoints`` (B, K, 2), ``valid`` (B, K), ``labels``
            (B, K), ``pose_labels`` (B,) and ``codes`` (B, Dz) if known.
        """
        idx = torch.as_tensor(list(sample_idx), dtype=torch.long)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.num_images):
            raise IndexError(
                f'sample_idx {idx.tolist()} outside the pseudo-label bank '
                f'of {self.num_images} images: the training set changed '
                'since the last clustering round')
        out = dict(
            keypoints=self.keypoints[idx].to(device),
            valid=self.valid[idx].to(device),
            labels=self.labels[idx].to(device),
            pose_labels=self.pose_labels[idx].to(device))
        if self.codes is not None:
            out['codes'] = self.codes[idx].to(device)
        return out

    def state_dict(self) -> dict:
        """Plain dict of CPU tensors and ints (checkpoint friendly)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.detach().cpu() if isinstance(v, Tensor) else v
        return out

    @classmethod
    def from_state_dict(cls, state: dict) -> 'PseudoLabelBank':
        """Rebuild a bank from :meth:`state_dict` output or an npz file."""
        kwargs = {}
        for f in fields(cls):
            if f.name not in state or state[f.name] is None:
                continue
            v = state[f.name]
            if isinstance(v, np.ndarray):
                v = torch.from_numpy(v) if v.ndim else v.item()
            kwargs[f.name] = v
        kwargs['valid'] = kwargs['valid'].bool()
        return cls(**kwargs)

    def to_buffers(self) -> Dict[str, Tensor]:
        """The bank as tensors only, one per field (model buffers).

        Returns:
            dict: Field name -> tensor; ``codes`` is a (0, 0) and
            ``anchors`` a (0, 0, 2) tensor when absent, ``round`` and
            ``iteration`` are 0-d int64 tensors.
        """
        out = {}
        empty = self.empty_buffers()
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                v = empty[f.name]
            elif not isinstance(v, Tensor):
                v = torch.tensor(int(v), dtype=torch.long)
            out[f.name] = v.detach()
        return out

    @staticmethod
    def empty_buffers() -> Dict[str, Tensor]:
        """The buffers of "no bank yet" (no image), see
        :meth:`from_buffers`."""
        return dict(
            keypoints=torch.zeros(0, 0, 2),
            valid=torch.zeros(0, 0, dtype=torch.bool),
            labels=torch.zeros(0, 0, dtype=torch.long),
            pose_labels=torch.zeros(0, dtype=torch.long),
            codes=torch.zeros(0, 0),
            round=torch.zeros((), dtype=torch.long),
            iteration=torch.zeros((), dtype=torch.long),
            anchors=torch.zeros(0, 0, 2))

    @classmethod
    def from_buffers(
            cls,
            buffers: Mapping[str, Tensor],
            prefix: str = '',
            scalars: Optional[Mapping[str, int]] = None
    ) -> Optional['PseudoLabelBank']:
        """The bank held by buffers (or a state dict), without copying.

        Args:
            buffers (Mapping[str, Tensor]): Output of :meth:`to_buffers`, a
                model's named buffers or its ``state_dict``.
            prefix (str): Prefix of the keys, e.g. :data:`BANK_BUFFER_PREFIX`.
            scalars (Mapping[str, int], optional): Known values of
                ``round`` and ``iteration`` (read instead of their buffers:
                reading a CUDA buffer waits for the device). Defaults to
                None.

        Returns:
            PseudoLabelBank, optional: None when the buffers hold no bank
            (no image, or no key at all).
        """
        if prefix + 'valid' not in buffers or \
                buffers[prefix + 'valid'].shape[0] == 0:
            return None
        kwargs = {}
        for f in fields(cls):
            if scalars is not None and f.name in scalars:
                kwargs[f.name] = int(scalars[f.name])
                continue
            v = buffers.get(prefix + f.name)
            if f.name in ('round', 'iteration'):
                v = int(v)
            elif f.name in ('codes', 'anchors') and (v is None
                                                     or v.shape[0] == 0):
                v = None
            kwargs[f.name] = v
        return cls(**kwargs)

    def save(self, path: str) -> None:
        """Save as a compressed ``.npz`` file."""
        arrays = {
            k: (v.numpy() if isinstance(v, Tensor) else np.asarray(v))
            for k, v in self.state_dict().items() if v is not None
        }
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str) -> 'PseudoLabelBank':
        """Load a bank written by :meth:`save`."""
        with np.load(path) as data:
            return cls.from_state_dict({k: data[k] for k in data.files})
