# Copyright (c) mmuld contributors. All rights reserved.
from .aflw_uld_dataset import AFLWULDDataset
from .catheads_dataset import CatHeadsDataset
from .coco_builder import build_coco_face, dump_json, make_record
from .face_schemes import (CATHEADS_METAINFO, FACE_5PT_METAINFO,
                           FIVE_POINT_NAMES, MAFL5_MAPPINGS, SCHEMES,
                           get_mafl5_mapping, map_keypoints, scheme_metainfo)
from .image_folder_dataset import ULDImageFolderDataset
from .ls3d_dataset import LS3DDataset
from .mafl_dataset import MAFLDataset
from .transforms import *  # noqa: F401,F403
from .uld_face_dataset import ULDFaceDataset

__all__ = [
    'ULDFaceDataset', 'ULDImageFolderDataset', 'MAFLDataset',
    'AFLWULDDataset', 'LS3DDataset', 'CatHeadsDataset', 'FACE_5PT_METAINFO',
    'CATHEADS_METAINFO', 'FIVE_POINT_NAMES', 'MAFL5_MAPPINGS', 'SCHEMES',
    'get_mafl5_mapping', 'map_keypoints', 'scheme_metainfo', 'make_record',
    'build_coco_face', 'dump_json'
]
