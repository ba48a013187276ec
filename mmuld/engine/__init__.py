# Copyright (c) mmuld contributors. All rights reserved.
from .clustering_round import align_pose_clusters, cluster_pseudo_labels
from .hooks import *  # noqa: F401,F403
from .pseudo_label_bank import PseudoLabelBank

__all__ = ['PseudoLabelBank', 'cluster_pseudo_labels', 'align_pose_clusters']
