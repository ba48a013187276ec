# Copyright (c) mmuld contributors. All rights reserved.
from .checkpoint_check_hook import CheckpointCheckHook
from .nan_loss_hook import NaNLossHook
from .run_state_hook import ULDRunStateHook
from .zeroshot_fit_hook import ZeroShotFitHook, model_fingerprint

__all__ = [
    'CheckpointCheckHook', 'NaNLossHook', 'ULDRunStateHook',
    'ZeroShotFitHook', 'model_fingerprint'
]
