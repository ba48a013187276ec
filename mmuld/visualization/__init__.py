# Copyright (c) mmuld contributors. All rights reserved.
from .uld_visualizer import ULDLocalVisualizer, landmark_colors

__all__ = ['ULDLocalVisualizer', 'landmark_colors']
