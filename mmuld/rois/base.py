# Copyright (c) mmuld contributors. All rights reserved.
"""Base class of RoI providers."""
from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence, Union

import numpy as np


def sanitize_roi(roi: Optional[Union[Sequence[float], np.ndarray]],
                 img_shape: Optional[Sequence[int]] = None,
                 clip: bool = False) -> Optional[np.ndarray]:
    """Validate a box: finite, positive area; optionally clip to the image.

    Args:
        roi (Sequence[float] | ndarray | None): Box (x1, y1, x2, y2).
        img_shape (Sequence[int], optional): Image shape (h, w, ...), used
            when ``clip`` is True.
        clip (bool): Clip the box to the image. Defaults to False.

    Returns:
        ndarray | None: float32 array (4,) or None when the box is missing,
        not finite or has zero area.
    """
    if roi is None:
        return None
    box = np.asarray(roi, dtype=np.float32).reshape(-1)
    if box.shape != (4, ):
        raise ValueError(f'a RoI must have 4 values (x1, y1, x2, y2), got '
                         f'shape {np.asarray(roi).shape}')
    if not np.isfinite(box).all():
        return None
    if clip and img_shape is not None:
        h, w = img_shape[:2]
        box[0::2] = np.clip(box[0::2], 0, w)
        box[1::2] = np.clip(box[1::2], 0, h)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


class BaseRoIProvider(metaclass=ABCMeta):
    """Base class: ``provider(img, meta) -> Optional[ndarray (4,) xyxy]``.

    Subclasses implement :meth:`get_roi`; ``__call__`` validates its output
    (a missing, non-finite or zero-area box is returned as None, i.e. no
    detection).

    Args:
        name (str, optional): Name used in counts and logs. Defaults to the
            class name.
    """

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name or type(self).__name__

    @abstractmethod
    def get_roi(self, img: Optional[np.ndarray],
                meta: dict) -> Optional[np.ndarray]:
        """Compute the RoI of one image.

        Args:
            img (ndarray | None): BGR image (H, W, 3).
            meta (dict): Image information (path, annotation, ...).

        Returns:
            ndarray | None: Box (x1, y1, x2, y2) in pixels, or None.
        """

    def __call__(self,
                 img: Optional[np.ndarray],
                 meta: Optional[dict] = None) -> Optional[np.ndarray]:
        """Return the RoI (x1, y1, x2, y2) float32 of ``img`` or None."""
        return sanitize_roi(self.get_roi(img, meta or {}))

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name={self.name!r})'
