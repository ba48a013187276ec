# Copyright (c) mmuld contributors. All rights reserved.
from mmuld.registry import DATASETS
from .uld_face_dataset import ULDFaceDataset


@DATASETS.register_module()
class LS3DDataset(ULDFaceDataset):
    """LS3D 68 points: unsupervised training on 300W-LP, regressors fit on
    the first 1,000 300W-LP images, tested on LS3D-W balanced. Normalise by
    sqrt(w*h) of the GT landmark box (norm_mode='bbox'), as
    Evaluators/evalLS3D.py.

    Annotation files come from ``tools/dataset_converters`` (see
    docs/datasets.md). Arguments are those of :class:`ULDFaceDataset`.
    """

    METAINFO: dict = dict(from_file='configs/_base_/datasets/300w.py')

    def __init__(self, *args, scheme: str = 'ls3d', **kwargs):
        super().__init__(*args, scheme=scheme, **kwargs)
