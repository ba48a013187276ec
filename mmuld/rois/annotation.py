# Copyright (c) mmuld contributors. All rights reserved.
from typing import Optional

import numpy as np

from .base import BaseRoIProvider, sanitize_roi
from .builder import ROI_PROVIDERS


@ROI_PROVIDERS.register_module()
class AnnotationRoIProvider(BaseRoIProvider):
    """Box taken from the dataset annotation.

    Args:
        bbox_key (str): Key of the box in ``meta``. Defaults to ``'bbox'``.
        bbox_format (str): ``'xywh'`` (COCO json annotations:
            x, y, width, height) or ``'xyxy'`` (e.g. mmpose's parsed
            ``data_info['bbox']``, shape (1, 4)). Defaults to ``'xywh'``.
        clip (bool): Clip the box to the image when the image is given.
            Defaults to True.
        name (str, optional): Provider name.

    The box may have shape (4,) or (N, 4); with several boxes the largest
    one is used. A missing key gives None (no detection).
    """

    def __init__(self,
                 bbox_key: str = 'bbox',
                 bbox_format: str = 'xywh',
                 clip: bool = True,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        if bbox_format not in ('xywh', 'xyxy'):
            raise ValueError("bbox_format must be 'xywh' or 'xyxy', got "
                             f'{bbox_format!r}')
        self.bbox_key = bbox_key
        self.bbox_format = bbox_format
        self.clip = clip

    def get_roi(self, img: Optional[np.ndarray],
                meta: dict) -> Optional[np.ndarray]:
        bbox = meta.get(self.bbox_key)
        if bbox is None:
            return None
        boxes = np.asarray(bbox, dtype=np.float32)
        if boxes.size == 0:
            return None
        if boxes.shape[-1] != 4:
            raise ValueError(f'meta[{self.bbox_key!r}] must have 4 values per '
                             f'box, got shape {boxes.shape}')
        boxes = boxes.reshape(-1, 4).copy()
        if self.bbox_format == 'xywh':
            boxes[:, 2:] += boxes[:, :2]
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        box = boxes[int(np.argmax(area))]
        shape = img.shape if img is not None else None
        return sanitize_roi(box, shape, clip=self.clip)
