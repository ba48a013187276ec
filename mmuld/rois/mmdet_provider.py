# Copyright (c) mmuld contributors. All rights reserved.
from typing import Optional, Sequence, Union

import numpy as np
from mmengine.config import Config
from mmengine.registry import DefaultScope

from .base import BaseRoIProvider
from .builder import ROI_PROVIDERS


@ROI_PROVIDERS.register_module()
class MMDetRoIProvider(BaseRoIProvider):
    """Best box of an MMDetection detector.

    The detector is built with :func:`mmdet.apis.init_detector` and run with
    :func:`mmdet.apis.inference_detector`. The returned box is the highest
    scoring prediction whose class is in ``classes`` and whose score is
    above ``score_thr``; zero-area boxes are ignored. Building and inference
    run under mmdet's default scope, the caller's scope is left unchanged.

    Args:
        config (str | Config): Detector config (path or Config).
        checkpoint (str, optional): Detector weights. None keeps random
            weights (mmdet then uses the COCO class names).
        device (str): Device. Defaults to ``'cpu'``.
        classes (Sequence[str], optional): Class names to keep, matched
            against ``model.dataset_meta['classes']``. None keeps all.
        score_thr (float): Minimum score (exclusive). Defaults to 0.3.
        name (str, optional): Provider name.
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 classes: Optional[Sequence[str]] = None,
                 score_thr: float = 0.3,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        from mmdet.apis import init_detector
        from mmdet.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        if not 0.0 <= score_thr <= 1.0:
            raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
        # mmdet needs its own default scope; restore the caller's afterwards
        with DefaultScope.overwrite_default_scope('mmdet'):
            self.model = init_detector(config, checkpoint, device=device)
        self.score_thr = float(score_thr)
        names = list((self.model.dataset_meta or {}).get('classes', []))
        if isinstance(classes, str):
            classes = [classes]
        if classes is None:
            self.class_ids = None
        else:
            missing = [c for c in classes if c not in names]
            if missing:
                raise ValueError(f'classes {missing} are not detector classes'
                                 f' {names}')
            self.class_ids = np.array([names.index(c) for c in classes])
        self.classes = None if classes is None else tuple(classes)

    def select_box(self, bboxes: np.ndarray, scores: np.ndarray,
                   labels: np.ndarray) -> Optional[np.ndarray]:
        """Best valid box among detections.

        Args:
            bboxes (ndarray): (N, 4) xyxy.
            scores (ndarray): (N,).
            labels (ndarray): (N,) class indices.

        Returns:
            ndarray | None: The box (4,) or None.
        """
        bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        keep = scores > self.score_thr
        keep &= np.isfinite(bboxes).all(1)
        keep &= (bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])
        if self.class_ids is not None:
            keep &= np.isin(labels, self.class_ids)
        if not keep.any():
            return None
        idx = np.flatnonzero(keep)
        return bboxes[idx[int(np.argmax(scores[idx]))]]

    def get_roi(self, img: Optional[np.ndarray],
                meta: dict) -> Optional[np.ndarray]:
        if img is None:
            raise ValueError('MMDetRoIProvider needs an image')
        from mmdet.apis import inference_detector
        with DefaultScope.overwrite_default_scope('mmdet'):
            result = inference_detector(self.model, img)
        pred = result.pred_instances
        return self.select_box(pred.bboxes.cpu().numpy(),
                               pred.scores.cpu().numpy(),
                               pred.labels.cpu().numpy())
