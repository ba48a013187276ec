# Copyright (c) mmuld contributors. All rights reserved.
from .nan_loss_hook import NaNLossHook
from .pseudo_label_hook import PseudoLabelHook
from .uld_stage_hook import ULDStageHook
from .zeroshot_fit_hook import ZeroShotFitHook, model_fingerprint

__all__ = [
    'NaNLossHook', 'PseudoLabelHook', 'ULDStageHook', 'ZeroShotFitHook',
    'model_fingerprint'
]
