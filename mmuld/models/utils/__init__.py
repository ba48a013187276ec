# Copyright (c) mmuld contributors. All rights reserved.
from .affine import (AffinePair, affine_matrices, invert_affine,
                     random_affine_matrices,
                     random_affine_pair, transform_points, warp_images)
from .conv_stack import build_conv_stack
from .coords import (as_float_tensor, image_to_input_coords,
                     input_to_image_coords, roi_to_input)
from .keypoint_ops import (heatmap_nms, input_to_map_coords,
                           map_to_input_coords, render_gaussian_heatmap,
                           render_gaussian_heatmaps, sample_descriptors)
from .precision import autocast_dtype, autocast_off

__all__ = [
    'AffinePair', 'affine_matrices', 'invert_affine', 'random_affine_matrices',
    'random_affine_pair', 'transform_points', 'warp_images',
    'build_conv_stack', 'as_float_tensor', 'image_to_input_coords',
    'input_to_image_coords', 'roi_to_input', 'heatmap_nms',
    'input_to_map_coords', 'map_to_input_coords', 'render_gaussian_heatmap',
    'render_gaussian_heatmaps', 'sample_descriptors', 'autocast_dtype',
    'autocast_off'
]
