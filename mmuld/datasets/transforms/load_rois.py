# Copyright (c) mmuld contributors. All rights reserved.
"""Replace the annotation box with a pre-computed RoI (detector output)."""
import json
import os.path as osp
import re
import warnings
from typing import Dict, List, Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmuld.registry import TRANSFORMS

FALLBACKS = ('annotation', 'whole_image', 'error')


def _norm_path(path: str) -> str:
    path = str(path).replace('\\', '/')
    path = re.sub('/+', '/', path)
    while path.startswith('./'):
        path = path[2:]
    return path


@TRANSFORMS.register_module()
class LoadRoIs(BaseTransform):
    """Set ``results['bbox']`` from a RoI file of ``tools/detect_rois.py``.

    The file is ``{"rois": {key: [x1, y1, x2, y2] | null}, ...}`` with keys
    relative to the image root. An image is matched by ``results[key]``
    (default ``img_path``): the full path first, then ever shorter trailing
    parts of it (``a/b/c.jpg``, ``b/c.jpg``, ``c.jpg``), so keys relative to
    any root and bare basenames all work. Put it before
    ``GetBBoxCenterScale``; the RoI then drives the crop and is what
    :class:`ZeroShotEstimator` samples in (``gt_instances.bboxes``).

    Images not in the file (or with a ``null`` / degenerate RoI) are
    handled by ``fallback``: ``'annotation'`` keeps the dataset box,
    ``'whole_image'`` uses the image bounds (needs ``img_shape``, i.e.
    ``LoadImage`` before), ``'error'`` raises. Fallbacks are counted in
    :attr:`num_missing` and warned about once.

    Required keys: ``img_path`` (or ``key``), ``bbox`` (fallback
    ``'annotation'``) or ``img_shape`` (fallback ``'whole_image'``).
    Modified keys: ``bbox`` ((1, 4) float32, xyxy), ``bbox_score``.
    Added keys: ``roi_source`` (``'file'`` or the fallback).

    Args:
        roi_file (str): JSON written by ``tools/detect_rois.py`` (a bare
            ``{key: box}`` mapping is accepted too).
        key (str): Results key used to look images up. Defaults to
            ``'img_path'``.
        fallback (str): ``'annotation'`` (default), ``'whole_image'`` or
            ``'error'``.
    """

    def __init__(self,
                 roi_file: str,
                 key: str = 'img_path',
                 fallback: str = 'annotation') -> None:
        if fallback not in FALLBACKS:
            raise ValueError(
                f'fallback must be one of {FALLBACKS}, got {fallback!r}')
        if not osp.isfile(roi_file):
            raise FileNotFoundError(
                f'RoI file not found: {roi_file} (make it with '
                'tools/detect_rois.py)')
        with open(roi_file) as f:
            data = json.load(f)
        rois = data.get('rois', data) if isinstance(data, dict) else None
        if not isinstance(rois, dict):
            raise ValueError(f'{roi_file}: expected {{"rois": {{image: '
                             '[x1, y1, x2, y2]}}}}')
        self.roi_file = roi_file
        self.key = key
        self.fallback = fallback
        self.rois: Dict[str, Optional[List[float]]] = {}
        for k, box in rois.items():
            if box is not None:
                arr = np.asarray(box, dtype=np.float32).reshape(-1)
                if arr.size != 4:
                    raise ValueError(f'{roi_file}: RoI of {k!r} must be '
                                     f'[x1, y1, x2, y2], got {box!r}')
                box = arr
            self.rois[_norm_path(k)] = box
        #: samples that used the RoI file / the fallback
        self.num_loaded = 0
        self.num_missing = 0
        self._warned = False

    def lookup(self, path: str) -> Optional[np.ndarray]:
        """RoI of an image path (full path, then trailing parts), or None."""
        parts = _norm_path(path).split('/')
        for i in range(len(parts)):
            box = self.rois.get('/'.join(parts[i:]))
            if box is not None:
                return box
        return None

    def _fallback(self, results: dict, why: str) -> dict:
        self.num_missing += 1
        where = results.get(self.key)
        if self.fallback == 'error':
            raise KeyError(f'LoadRoIs: {why} for {where!r} in '
                           f'{self.roi_file}')
        if not self._warned:
            warnings.warn(
                f'LoadRoIs: {why} for {where!r} in {self.roi_file}; using '
                f'the {self.fallback} box (further cases are only counted)')
            self._warned = True
        if self.fallback == 'whole_image':
            if 'img_shape' not in results:
                raise KeyError("LoadRoIs(fallback='whole_image') needs "
                               "'img_shape': put LoadImage before it")
            h, w = results['img_shape'][:2]
            results['bbox'] = np.array([[0, 0, w, h]], dtype=np.float32)
            results['bbox_score'] = np.ones(1, dtype=np.float32)
        elif 'bbox' not in results:
            raise KeyError(f'LoadRoIs: {why} for {where!r} and the sample '
                           'has no annotation bbox')
        results['roi_source'] = self.fallback
        return results

    def transform(self, results: dict) -> dict:
        """Replace ``results['bbox']`` with the image's RoI."""
        if self.key not in results:
            raise KeyError(f'LoadRoIs: results have no {self.key!r}')
        box = self.lookup(results[self.key])
        if box is None:
            return self._fallback(results, 'no RoI')
        if not np.isfinite(box).all() or box[2] <= box[0] or \
                box[3] <= box[1]:
            return self._fallback(results, f'degenerate RoI {box.tolist()}')
        results['bbox'] = box.reshape(1, 4).copy()
        results['bbox_score'] = np.ones(1, dtype=np.float32)
        results['roi_source'] = 'file'
        self.num_loaded += 1
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(roi_file={self.roi_file!r}, '
                f'key={self.key!r}, fallback={self.fallback!r})')
