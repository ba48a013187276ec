# Copyright (c) mmuld contributors. All rights reserved.
from .aggregator import HyperFeatureAggregator
from .bottleneck import GNBottleneck, gn_groups
from .feature_map_adapter import FeatureMapAdapter
from .resize import resize_matrix, separable_resize
from .sd_backbone import StableDiffusionBackbone
from .sd_loading import (SDComponents, check_sd_dir, encode_empty_prompt,
                         load_sd_components, random_sd15_components)

__all__ = [
    'FeatureMapAdapter', 'StableDiffusionBackbone', 'HyperFeatureAggregator',
    'GNBottleneck', 'gn_groups', 'SDComponents', 'check_sd_dir',
    'encode_empty_prompt',
    'load_sd_components', 'random_sd15_components', 'resize_matrix',
    'separable_resize'
]
