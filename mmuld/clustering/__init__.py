# Copyright (c) mmuld contributors. All rights reserved.
from .clustering_round import align_pose_clusters, cluster_pseudo_labels
from .exemplar import exemplar_assignment, image_exemplars
from .kmeans import (KMeansResult, assign_to_centroids, kmeans,
                     kmeans_plusplus)
from .pseudo_label_bank import PseudoLabelBank
from .two_stage import TwoStageResult, two_stage_clustering

__all__ = [
    'image_exemplars',
    'KMeansResult', 'kmeans', 'kmeans_plusplus', 'assign_to_centroids',
    'exemplar_assignment', 'TwoStageResult', 'two_stage_clustering',
    'PseudoLabelBank', 'cluster_pseudo_labels', 'align_pose_clusters'
]
