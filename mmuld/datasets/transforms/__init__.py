# Copyright (c) mmuld contributors. All rights reserved.
from .load_rois import LoadRoIs
from .safe_load_image import SafeLoadImage

__all__ = ['LoadRoIs', 'SafeLoadImage']
