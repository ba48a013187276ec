# Copyright (c) mmuld contributors. All rights reserved.
from .components import (SD15_SCHEDULER_KWARGS, build_text_encoder,
                         build_unet, build_vae, save_sd_folder)
from .trainer import SmallDiffusionConfig, SmallDiffusionTrainer

__all__ = [
    'SD15_SCHEDULER_KWARGS', 'build_text_encoder', 'build_unet', 'build_vae',
    'save_sd_folder', 'SmallDiffusionConfig', 'SmallDiffusionTrainer'
]
