# Copyright (c) mmuld contributors. All rights reserved.
"""Visualiser for discovered landmarks: one fixed colour per landmark."""
from typing import Dict, List, Optional, Tuple

import matplotlib
import numpy as np
from mmpose.visualization import PoseLocalVisualizer

from mmuld.registry import VISUALIZERS


def landmark_colors(num_landmarks: int) -> np.ndarray:
    """Distinct RGB colours, one per discovered landmark (tab20 / hsv).

    Args:
        num_landmarks (int): K.

    Returns:
        np.ndarray: (K, 3) uint8 colours; landmark k always gets row k.
    """
    cmap = matplotlib.colormaps['tab10' if num_landmarks <= 10 else 'hsv']
    n = 10 if num_landmarks <= 10 else num_landmarks
    rgb = [cmap(i / max(n - 1, 1) if n > 10 else i)[:3]
           for i in range(num_landmarks)]
    return (np.asarray(rgb) * 255).astype(np.uint8)


@VISUALIZERS.register_module()
class ULDLocalVisualizer(PoseLocalVisualizer):
    """mmpose's :class:`PoseLocalVisualizer` for discovered landmarks.

    Discovered landmarks have no names and no skeleton, and their number K
    differs from the number of ground-truth landmarks of the dataset. This
    visualiser keeps the dataset meta for everything else but colours
    landmark k with ``landmark_colors(K)[k]`` and draws no skeleton, so the
    same landmark has the same colour on every image.

    Args:
        name (str): Instance name. Defaults to ``'visualizer'``.
        num_landmarks (int): K. Defaults to 10.
        **kwargs: Arguments of :class:`PoseLocalVisualizer`.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 num_landmarks: int = 10,
                 **kwargs) -> None:
        kwargs.setdefault('radius', 3)
        kwargs.setdefault('kpt_color', landmark_colors(num_landmarks))
        super().__init__(name=name, **kwargs)
        self.num_landmarks = num_landmarks
        self.kpt_color = landmark_colors(num_landmarks)
        self.skeleton = None

    def set_dataset_meta(self,
                         dataset_meta: Optional[Dict],
                         skeleton_style: str = 'mmpose') -> None:
        """Keep the dataset meta but not its keypoint colours/skeleton."""
        super().set_dataset_meta(dataset_meta or {}, skeleton_style)
        self.kpt_color = landmark_colors(self.num_landmarks)
        self.skeleton = None
        self.link_color = None

    def _draw_instances_kpts(self, image: np.ndarray, instances,
                             kpt_thr: float = 0.3, show_kpt_idx: bool = False,
                             skeleton_style: str = 'mmpose'
                             ) -> Tuple[np.ndarray, List]:
        # ground truth (G points) and predictions (K points) differ in
        # count: colour ground truth in white.
        if 'keypoints' in instances and \
                instances.keypoints.shape[-2] != self.num_landmarks:
            saved = self.kpt_color
            self.kpt_color = (255, 255, 255)
            try:
                return super()._draw_instances_kpts(image, instances,
                                                    kpt_thr, show_kpt_idx,
                                                    skeleton_style)
            finally:
                self.kpt_color = saved
        return super()._draw_instances_kpts(image, instances, kpt_thr,
                                            show_kpt_idx, skeleton_style)

    def draw_circles(self, center, radius, face_colors='none', alpha=1.0,
                     **kwargs):
        """Draw circles; accept mmpose's one-element ``radius`` arrays.

        mmpose 1.3 passes ``radius=np.array([r])`` and its OpenCV backend
        calls ``int(radius)``, which numpy >= 2.x refuses for 1-d arrays.
        """
        if self.backend == 'opencv' and np.size(radius) == 1:
            radius = float(np.asarray(radius).reshape(-1)[0])
        return super().draw_circles(
            center, radius, face_colors=face_colors, alpha=alpha, **kwargs)
