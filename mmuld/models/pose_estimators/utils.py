# Copyright (c) mmuld contributors. All rights reserved.
"""Helpers shared by the ULD estimators."""
from typing import Dict, List, Sequence

import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn


def gather_landmarks(indices: Tensor, **per_point: Tensor
                     ) -> Dict[str, Tensor]:
    """Pick the exemplar of every landmark out of per-point tensors.

    Args:
        indices (Tensor): (B, K) point index per landmark, -1 for none
            (as returned by :func:`mmuld.clustering.image_exemplars`).
        **per_point (Tensor): (B, N, ...) tensors, e.g. ``keypoints``
            (B, N, 2), ``scores`` (B, N), ``descriptors`` (B, N, D).

    Returns:
        dict: Each input gathered to (B, K, ...), zero where a landmark has
        no exemplar, plus ``visible`` (B, K) float in {0, 1}.
    """
    found = indices >= 0
    safe = indices.clamp(min=0)
    out = dict(visible=found.float())
    for name, value in per_point.items():
        extra = value.shape[2:]
        idx = safe.reshape(*safe.shape, *([1] * len(extra))).expand(
            *safe.shape, *extra)
        picked = torch.gather(value, 1, idx)
        mask = found.reshape(*found.shape, *([1] * len(extra)))
        out[name] = picked * mask
    return out


def to_pred_instances(res: Dict[str, Tensor],
                      keys: Sequence[str]) -> List[InstanceData]:
    """Split batched landmark tensors into one ``InstanceData`` per image.

    Args:
        res (dict): Batched tensors with ``keypoints`` (B, K, 2),
            ``scores`` (B, K), ``visible`` (B, K) and optionally more.
        keys (Sequence[str]): Extra entries of ``res`` to copy under the
            same name (e.g. ``descriptors``, ``pose_labels``).

    Returns:
        list[InstanceData]: ``keypoints`` (1, K, 2), ``keypoint_scores``
        (1, K), ``keypoints_visible`` (1, K) and the extra keys, as numpy.
    """
    preds = []
    for i in range(res['keypoints'].shape[0]):
        inst = InstanceData()
        inst.keypoints = res['keypoints'][i:i + 1].cpu().numpy()
        inst.keypoint_scores = res['scores'][i:i + 1].cpu().numpy()
        inst.keypoints_visible = res['visible'][i:i + 1].cpu().numpy()
        for key in keys:
            inst.set_field(res[key][i:i + 1].cpu().numpy(), key)
        preds.append(inst)
    return preds


def adopt_buffer_shapes(module: nn.Module, state_dict: dict, prefix: str,
                        names: Sequence[str]) -> None:
    """Resize buffers whose shape depends on the data before loading.

    Centroid buffers change shape with K, Q and D; giving them the stored
    shape first lets the regular (strict) state-dict copy succeed.

    Args:
        module (nn.Module): Module owning the buffers.
        state_dict (dict): State dict being loaded.
        prefix (str): Prefix of the module's keys in ``state_dict``.
        names (Sequence[str]): Buffer names.
    """
    for name in names:
        key = prefix + name
        if key in state_dict:
            setattr(module, name,
                    torch.empty_like(state_dict[key],
                                     device=getattr(module, name).device))


def detector_grad_norms(logits: Tensor, losses: Dict[str, Tensor]
                        ) -> Dict[str, Tensor]:
    """Norm of the gradient each loss sends into the detector output.

    Logged (not optimised) so that a loss that starves another is visible.

    Args:
        logits (Tensor): The detector logits H of the batch.
        losses (dict): Named losses (``loss_<name>``).

    Returns:
        dict: ``gnorm_<name>``: ``||d loss / d H||`` of every loss that
        requires grad.
    """
    out = {}
    for name, value in losses.items():
        if not name.startswith('loss_') or not value.requires_grad:
            continue
        g, = torch.autograd.grad(
            value, logits, retain_graph=True, allow_unused=True)
        norm = g.norm() if g is not None else logits.new_zeros(())
        out['gnorm_' + name[len('loss_'):]] = norm.detach()
    return out
