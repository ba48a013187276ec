# Copyright (c) mmuld contributors. All rights reserved.
from .load_rois import LoadRoIs

__all__ = ['LoadRoIs']
