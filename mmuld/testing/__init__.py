# Copyright (c) mmuld contributors. All rights reserved.
from .ridge_oracle import oracle_ridge
from .round_setup import cpu_round_setup
from .tiny_sd import SD15_SCHEDULER_KWARGS, build_tiny_sd

__all__ = [
    'build_tiny_sd', 'SD15_SCHEDULER_KWARGS', 'oracle_ridge', 'cpu_round_setup'
]
