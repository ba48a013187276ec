# Copyright (c) mmuld contributors. All rights reserved.
from mmuld.registry import DATASETS
from .face_schemes import CATHEADS_METAINFO
from .uld_face_dataset import ULDFaceDataset


@DATASETS.register_module()
class CatHeadsDataset(ULDFaceDataset):
    """CatHeads (CAT dataset) 9 points: left eye, right eye, mouth, 3 + 3
    ear points. Normalise by the inter-ocular distance, norm_indices=(0,
    1).

    Annotation files come from ``tools/dataset_converters`` (see
    docs/datasets.md). Arguments are those of :class:`ULDFaceDataset`.
    """

    METAINFO: dict = CATHEADS_METAINFO

    def __init__(self, *args, scheme: str = 'catheads', **kwargs):
        super().__init__(*args, scheme=scheme, **kwargs)
