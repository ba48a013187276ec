# Copyright (c) mmuld contributors. All rights reserved.
from mmuld.registry import DATASETS
from .face_schemes import FACE_5PT_METAINFO
from .uld_face_dataset import ULDFaceDataset


@DATASETS.register_module()
class AFLWULDDataset(ULDFaceDataset):
    """AFLW_M (AFLW with 5 points in MAFL order, Thewlis et al. split:
    10,122 train / 2,995 test). Normalise by the inter-ocular distance,
    norm_indices=(0, 1).

    Annotation files come from ``tools/dataset_converters`` (see
    docs/datasets.md). Arguments are those of :class:`ULDFaceDataset`.
    """

    METAINFO: dict = FACE_5PT_METAINFO

    def __init__(self, *args, scheme: str = 'mafl5', **kwargs):
        super().__init__(*args, scheme=scheme, **kwargs)
