# Copyright (c) mmuld contributors. All rights reserved.
"""Images without annotations (landmark discovery only)."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image

from mmuld.registry import DATASETS
from .face_schemes import FACE_5PT_METAINFO

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


@DATASETS.register_module()
class ULDImageFolderDataset(BaseDataset):
    """All images of a folder; the bbox is the whole image.

    Each sample has dummy GT keypoints (zeros, invisible) of the metainfo's
    keypoint count so that mmpose's top-down pipeline runs unchanged, and
    ``uld_split`` (default ``'test'``).

    Args:
        data_root (str): Image folder (searched recursively).
        extensions (Sequence[str]): Image file extensions.
        uld_split (str): Split stored in each sample.
        metainfo (dict, optional): mmpose dataset-info; default 5 points.
        pipeline (list): Data pipeline.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO = FACE_5PT_METAINFO

    def __init__(self,
                 data_root: str,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 uld_split: str = 'test',
                 metainfo: Optional[dict] = None,
                 pipeline: list = [],
                 **kwargs):
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'Image folder not found: {data_root}')
        self.extensions = tuple(e.lower() for e in extensions)
        self.uld_split = uld_split
        super().__init__(
            data_root=data_root,
            metainfo=metainfo,
            pipeline=pipeline,
            **kwargs)

    @classmethod
    def _load_metainfo(cls, metainfo: dict = None) -> dict:
        from mmpose.datasets.datasets.utils import parse_pose_metainfo
        return parse_pose_metainfo(
            dict(cls.METAINFO) if metainfo is None else metainfo)

    def load_data_list(self) -> List[dict]:
        """Scan the folder (sorted, recursive)."""
        files = []
        for root, _, names in os.walk(self.data_root):
            for n in names:
                if n.lower().endswith(self.extensions):
                    files.append(osp.join(root, n))
        files.sort()
        if not files:
            raise FileNotFoundError(
                f'No images with extensions {self.extensions} under '
                f'{self.data_root}.')
        k = self._metainfo['num_keypoints']
        data_list = []
        for i, path in enumerate(files):
            try:
                with Image.open(path) as im:
                    w, h = im.size
            except OSError as e:
                raise ValueError(f'cannot read image {path} ({e})') from None
            data_list.append(
                dict(
                    img_id=i,
                    id=i,
                    img_path=path,
                    bbox=np.array([[0, 0, w, h]], dtype=np.float32),
                    bbox_score=np.ones(1, dtype=np.float32),
                    keypoints=np.zeros((1, k, 2), dtype=np.float32),
                    keypoints_visible=np.zeros((1, k), dtype=np.float32),
                    uld_split=self.uld_split))
        return data_list

    def prepare_data(self, idx: int):
        """Add the flip metainfo like mmpose datasets, then run the
        pipeline."""
        data_info = self.get_data_info(idx)
        for key in ('flip_indices', 'flip_pairs', 'dataset_keypoint_weights'):
            data_info[key] = self._metainfo[key]
        data = self.pipeline(data_info)
        if data is None and self.test_mode:
            from .transforms.safe_load_image import SafeLoadImage
            path = data_info['img_path']
            raise ValueError(f'cannot read image {path} '
                             f'({SafeLoadImage.errors.get(path, "")})')
        return data
