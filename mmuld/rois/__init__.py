# Copyright (c) mmuld contributors. All rights reserved.
from .annotation import AnnotationRoIProvider
from .base import BaseRoIProvider, sanitize_roi
from .builder import ROI_PROVIDERS, build_roi_provider
from .detect import (build_roi_chain, collect_items, detect_rois,
                     write_rois)
from .fallback import FallbackRoIProvider
from .mmdet_provider import MMDetRoIProvider
from .whole_image import WholeImageRoIProvider

__all__ = [
    'ROI_PROVIDERS', 'build_roi_provider', 'BaseRoIProvider', 'sanitize_roi',
    'AnnotationRoIProvider', 'WholeImageRoIProvider', 'MMDetRoIProvider',
    'FallbackRoIProvider', 'collect_items', 'build_roi_chain', 'detect_rois',
    'write_rois'
]
