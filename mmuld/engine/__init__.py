# Copyright (c) mmuld contributors. All rights reserved.
from .clustering_rounds import ClusteringRounds, pseudo_label_spread
from .hooks import *  # noqa: F401,F403
from .loops import ULDTrainLoop
from .stage_entry import enter_stage, fixed_parameters, train_mode

__all__ = [
    'ClusteringRounds', 'ULDTrainLoop', 'enter_stage', 'fixed_parameters',
    'pseudo_label_spread', 'train_mode'
]
