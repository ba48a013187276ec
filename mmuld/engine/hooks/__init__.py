# Copyright (c) mmuld contributors. All rights reserved.
from .checkpoint_check_hook import CheckpointCheckHook
from .nan_loss_hook import NaNLossHook
from .pseudo_label_hook import PseudoLabelHook
from .uld_stage_hook import ULDStageHook
from .zeroshot_fit_hook import ZeroShotFitHook, model_fingerprint

__all__ = [
    'CheckpointCheckHook', 'NaNLossHook', 'PseudoLabelHook', 'ULDStageHook',
    'ZeroShotFitHook', 'model_fingerprint'
]
