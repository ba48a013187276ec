# Copyright (c) mmuld contributors. All rights reserved.
"""Build MMPose COCO-style face annotation files (used by the converters)."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np


def make_record(file_name: str,
                keypoints: np.ndarray,
                width: int,
                height: int,
                bbox: Optional[Sequence[float]] = None,
                visible: Optional[np.ndarray] = None,
                bbox_pad: float = 0.1,
                **extra) -> dict:
    """One image with one face instance.

    Args:
        file_name (str): Image path relative to the image prefix.
        keypoints (np.ndarray): (K, 2) GT landmarks.
        width (int): Image width.
        height (int): Image height.
        bbox (Sequence[float], optional): xywh; default = landmark box padded
            by ``bbox_pad`` of its size on each side, clipped to the image.
        visible (np.ndarray, optional): (K,) visibility, default all 1.
        bbox_pad (float): Padding of the default bbox.
        **extra: Additional annotation fields (``uld_split``, ``yaw``...).

    Returns:
        dict: Record for :func:`build_coco_face`.
    """
    kpts = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(kpts).all():
        raise ValueError(f'Non-finite keypoints for {file_name}.')
    vis = (np.ones(len(kpts)) if visible is None else np.asarray(visible))
    if bbox is None:
        lo, hi = kpts.min(0), kpts.max(0)
        pad = (hi - lo) * bbox_pad
        lo = np.maximum(lo - pad, 0)
        hi = np.minimum(hi + pad, [width - 1, height - 1])
        bbox = [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]
    return dict(
        file_name=file_name,
        width=int(width),
        height=int(height),
        keypoints=kpts,
        visible=vis,
        bbox=[float(v) for v in bbox],
        extra=extra)


def build_coco_face(records: List[dict],
                    category_name: str = 'face',
                    keypoint_names: Optional[Sequence[str]] = None) -> Dict:
    """Assemble records into a COCO-style dict (one instance per image).

    Args:
        records (list[dict]): From :func:`make_record`.
        category_name (str): Category name.
        keypoint_names (Sequence[str], optional): Stored in the category.

    Returns:
        dict: ``images``, ``annotations``, ``categories``.
    """
    if not records:
        raise ValueError('No records to write.')
    nums = {len(r['keypoints']) for r in records}
    if len(nums) != 1:
        raise ValueError(f'Records have different keypoint counts: {nums}.')
    num = nums.pop()
    images, anns = [], []
    for i, r in enumerate(records, start=1):
        images.append(
            dict(
                id=i,
                file_name=r['file_name'],
                width=r['width'],
                height=r['height']))
        kp = np.concatenate([r['keypoints'], r['visible'][:, None] * 2], 1)
        x, y, w, h = r['bbox']
        ann = dict(
            id=i,
            image_id=i,
            category_id=1,
            iscrowd=0,
            bbox=[x, y, w, h],
            area=float(w * h),
            num_keypoints=int(np.count_nonzero(r['visible'])),
            keypoints=[float(v) for v in kp.reshape(-1)])
        ann.update(r['extra'])
        anns.append(ann)
    cat = dict(id=1, name=category_name, supercategory=category_name)
    cat['keypoints'] = list(keypoint_names or
                            [f'kpt-{i}' for i in range(num)])
    cat['skeleton'] = []
    return dict(images=images, annotations=anns, categories=[cat])


def dump_json(data: Dict, path: str) -> None:
    """Write json, creating the parent folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)
