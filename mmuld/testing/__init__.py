# Copyright (c) mmuld contributors. All rights reserved.
from .ridge_oracle import oracle_ridge
from .tiny_sd import SD15_SCHEDULER_KWARGS, build_tiny_sd

__all__ = ['build_tiny_sd', 'SD15_SCHEDULER_KWARGS', 'oracle_ridge']
