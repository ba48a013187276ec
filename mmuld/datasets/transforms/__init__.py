# Copyright (c) mmuld contributors. All rights reserved.
from .crop_inside_image import CropInsideImage
from .load_rois import LoadRoIs
from .safe_load_image import SafeLoadImage

__all__ = ['CropInsideImage', 'LoadRoIs', 'SafeLoadImage']
