# Copyright (c) mmuld contributors. All rights reserved.
from .ced import ced_auc, ced_curve, cumulative_landmark_curve
from .cluster_quality import cluster_quality
from .coverage import landmark_spread, part_coverage
from .descriptor_probe import (candidate_coverage, descriptor_maps,
                               first_round_probe, ground_truth_probe,
                               round_candidate_coverage, round_first_choice)
from .equivariance import equivariance_error
from .landmark_accuracy import per_landmark_accuracy
from .nme import (INTEROCULAR_PRESETS, Normaliser, bbox_size,
                  forward_backward_nme, interocular_distance, normaliser)
from .yaw import DEFAULT_YAW_BINS, yaw_breakdown

__all__ = [
    'forward_backward_nme', 'interocular_distance', 'bbox_size',
    'INTEROCULAR_PRESETS', 'ced_curve', 'ced_auc',
    'cumulative_landmark_curve', 'per_landmark_accuracy', 'cluster_quality',
    'equivariance_error', 'yaw_breakdown', 'DEFAULT_YAW_BINS',
    'landmark_spread', 'part_coverage', 'ground_truth_probe',
    'candidate_coverage', 'round_candidate_coverage', 'descriptor_maps',
    'normaliser', 'Normaliser', 'first_round_probe', 'round_first_choice'
]
