# Copyright (c) mmuld contributors. All rights reserved.
from .bootstrap_loss import BootstrapLoss, dense_correspondences
from .descriptor_contrastive_loss import DescriptorContrastiveLoss
from .elbo_loss import ELBOLoss
from .heatmap_mse_loss import HeatmapMSELoss
from .latent_contrastive_loss import LatentContrastiveLoss
from .pairwise_contrastive import (pairwise_contrastive_loss,
                                   pairwise_distances)

__all__ = [
    'BootstrapLoss', 'dense_correspondences', 'DescriptorContrastiveLoss',
    'ELBOLoss', 'HeatmapMSELoss', 'LatentContrastiveLoss',
    'pairwise_contrastive_loss', 'pairwise_distances'
]
