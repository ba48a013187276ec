# Copyright (c) mmuld contributors. All rights reserved.
from .base_uld_head import BaseULDDenseHead
from .descriptor_head import ULDDescriptorHead
from .detector_head import ULDDetectorHead

__all__ = ['BaseULDDenseHead', 'ULDDetectorHead', 'ULDDescriptorHead']
