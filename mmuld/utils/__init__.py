# Copyright (c) mmuld contributors. All rights reserved.
from .checkpoint import (CheckpointError, find_resumable_checkpoint,
                         is_intact_checkpoint, load_checkpoint_file,
                         register_checkpoint_safe_globals)
from .checkpoint_meta import (CheckpointMismatchError, check_checkpoint_meta,
                              checkpoint_meta_of, expected_meta_of, uld_meta)
from .setup_env import register_all_modules
from .state_dict_check import CheckpointFitError, check_state_dict_fits

__all__ = [
    'register_all_modules', 'register_checkpoint_safe_globals',
    'CheckpointError', 'load_checkpoint_file', 'is_intact_checkpoint',
    'find_resumable_checkpoint', 'CheckpointMismatchError',
    'check_checkpoint_meta', 'checkpoint_meta_of', 'expected_meta_of',
    'uld_meta', 'CheckpointFitError', 'check_state_dict_fits'
]
