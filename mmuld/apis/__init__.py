# Copyright (c) mmuld contributors. All rights reserved.
from .equivariance import (build_split_dataloader, checkpoint_equivariance,
                           load_landmark_model, select_split)
from .flip_pairs import (flip_distance_matrix, flip_pairs_from_indices,
                         match_flip_pairs)
from .inference import (dataset_leaves, get_test_pipeline_cfg, init_model,
                        load_config)
from mmuld.utils.landmark_io import clean_landmarks, to_bgr_uint8
from .pseudo_label_export import (check_dataset_name, collect_samples,
                                  export_pseudo_labels, keypoint_names,
                                  make_dataset_info, write_dataset_info)
from .uld_inferencer import ULDInferencer, build_inference_roi_provider

__all__ = [
    'ULDInferencer', 'build_inference_roi_provider', 'init_model',
    'load_config', 'get_test_pipeline_cfg', 'dataset_leaves',
    'flip_distance_matrix', 'match_flip_pairs', 'flip_pairs_from_indices',
    'export_pseudo_labels', 'collect_samples', 'make_dataset_info',
    'write_dataset_info', 'keypoint_names', 'check_dataset_name',
    'clean_landmarks', 'to_bgr_uint8', 'checkpoint_equivariance',
    'load_landmark_model', 'select_split', 'build_split_dataloader'
]
