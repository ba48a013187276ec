# Copyright (c) mmuld contributors. All rights reserved.
from .pose_vae_neck import PoseVAENeck

__all__ = ['PoseVAENeck']
