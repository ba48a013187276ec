# Copyright (c) mmuld contributors. All rights reserved.
from typing import Optional

import numpy as np

from .base import BaseRoIProvider
from .builder import ROI_PROVIDERS


@ROI_PROVIDERS.register_module()
class WholeImageRoIProvider(BaseRoIProvider):
    """The whole image as RoI: ``[0, 0, W, H]``.

    If ``img`` is None, the size is read from ``meta['width']`` and
    ``meta['height']`` (as in COCO image entries).
    """

    def get_roi(self, img: Optional[np.ndarray],
                meta: dict) -> Optional[np.ndarray]:
        if img is not None:
            h, w = img.shape[:2]
        elif 'width' in meta and 'height' in meta:
            w, h = meta['width'], meta['height']
        else:
            raise ValueError('WholeImageRoIProvider needs an image or '
                             "meta['width'] and meta['height']")
        return np.array([0, 0, w, h], dtype=np.float32)
