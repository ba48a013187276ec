# Copyright (c) mmuld contributors. All rights reserved.
"""Crop boxes that stay inside the image (no artificial border)."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmuld.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CropInsideImage(BaseTransform):
    """Move and shrink the crop box so that it lies inside the image.

    Put it after mmpose's ``GetBBoxCenterScale`` and before
    ``TopdownAffine``. mmpose pads the box (``padding=1.25``) and widens it
    to the input aspect ratio; on images that are already object crops
    (AFLW_M, MAFL, whole-image boxes) both put constant black borders into
    every input, and a keypoint detector trained without supervision locks
    onto those borders (they are the most repeatable structure in the data
    set). This transform first applies the same aspect-ratio fix, then
    shifts the box into the image and, where the box is larger than the
    image along an axis, shrinks it (keeping the aspect ratio) so that the
    crop holds image pixels only. ``TopdownAffine`` then finds the aspect
    ratio already right and keeps the box as it is.

    Required keys: ``bbox_center``, ``bbox_scale``, ``img_shape``.
    Modified keys: ``bbox_center``, ``bbox_scale``.

    Args:
        input_size (Sequence[int]): ``(w, h)`` of the network input (its
            aspect ratio is used).
    """

    def __init__(self, input_size: Sequence[int]):
        if len(input_size) != 2 or min(input_size) <= 0:
            raise ValueError(
                f'input_size must be (w, h) > 0, got {input_size!r}')
        self.aspect = float(input_size[0]) / float(input_size[1])

    def transform(self, results: dict) -> dict:
        """Adjust ``bbox_center`` / ``bbox_scale`` (see class doc)."""
        h_img, w_img = results['img_shape'][:2]
        centers = np.array(results['bbox_center'], dtype=np.float32)
        scales = np.array(results['bbox_scale'], dtype=np.float32)
        for i in range(len(centers)):
            w, h = scales[i]
            if w > h * self.aspect:
                h = w / self.aspect
            else:
                w = h * self.aspect
            # shrink to fit (aspect ratio kept)
            shrink = min(1.0, w_img / w, h_img / h)
            w, h = w * shrink, h * shrink
            cx = np.clip(centers[i, 0], w / 2, w_img - w / 2)
            cy = np.clip(centers[i, 1], h / 2, h_img - h / 2)
            centers[i] = (cx, cy)
            scales[i] = (w, h)
        results['bbox_center'] = centers
        results['bbox_scale'] = scales
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(aspect={self.aspect:.3f})'
