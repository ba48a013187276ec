# Copyright (c) mmuld contributors. All rights reserved.
from .aggregator import HyperFeatureAggregator
from .bottleneck import GNBottleneck, gn_groups
from .sd_backbone import StableDiffusionBackbone
from .sd_loading import (SDComponents, check_sd_dir, encode_empty_prompt,
                         load_sd_components)

__all__ = [
    'StableDiffusionBackbone', 'HyperFeatureAggregator', 'GNBottleneck',
    'gn_groups', 'SDComponents', 'check_sd_dir', 'encode_empty_prompt',
    'load_sd_components'
]
