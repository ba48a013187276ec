# Copyright (c) mmuld contributors. All rights reserved.
from .stages import (STAGE_NAMES, PSEUDO_LABEL_KINDS, Stage,
                     StageSchedule)
from .landmark_decoder import LandmarkDecoder
from .uld_cfg import ULDTestCfg, ULDTrainCfg
from .uld_estimator import ULDEstimator
from .zeroshot_estimator import (ZeroShotEstimator, image_to_input_coords,
                                 input_to_image_coords, roi_to_input)

__all__ = [
    'ULDEstimator', 'ZeroShotEstimator', 'image_to_input_coords',
    'input_to_image_coords', 'roi_to_input', 'STAGE_NAMES',
    'PSEUDO_LABEL_KINDS', 'Stage', 'StageSchedule', 'LandmarkDecoder',
    'ULDTrainCfg', 'ULDTestCfg'
]
