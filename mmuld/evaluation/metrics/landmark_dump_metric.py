# Copyright (c) mmuld contributors. All rights reserved.
"""Write the discovered landmarks of a test run to a JSON file."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmuld.registry import METRICS
from mmuld.utils.landmark_io import clean_landmarks

LANDMARKS_FORMAT = 'mmuld.landmarks.v1'


def _np(x) -> Optional[np.ndarray]:
    if x is None:
        return None
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _py(x):
    if isinstance(x, np.generic):
        return x.item()
    return x


@METRICS.register_module()
class LandmarkDumpMetric(BaseMetric):
    """Dump the discovered landmarks of every test sample (no metric).

    Output (``json``)::

        {"format": "mmuld.landmarks.v1",
         "num_landmarks": K,
         "images": [{"img_path": str, "img_id": int | null,
                     "uld_split": "train" | "test" | null,
                     "bbox": [x1, y1, x2, y2] | null,
                     "crop": [x0, y0, x1, y1] | null,  # input crop box
                     "input_size": [w, h] | null,
                     "keypoints": [[x, y], ...],   # K, image pixels
                     "scores": [s, ...],           # K
                     "visible": [0 | 1, ...]},     # K, 0: no landmark
                    ...]}

    A landmark is visible when the model found it and it lies inside the
    image; others are reported at (0, 0) with score 0, as by the inferencer
    and the export (:func:`mmuld.utils.landmark_io.clean_landmarks`).
    Images are in dataloader order (one entry per sample / instance).

    Args:
        out_file (str, optional): Output path. None: ``landmarks.json`` in
            the work dir of the running :class:`Runner` (found through the
            current logger's log file), else in the current directory.
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): Metric prefix (no metric is returned).
    """
    default_prefix: Optional[str] = 'landmarks'

    def __init__(self,
                 out_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if out_file is not None and not str(out_file).endswith('.json'):
            raise ValueError(f'out_file must be a .json file, got {out_file}')
        self.out_file = out_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Collect the landmarks of one batch.

        Args:
            data_batch: Unused.
            data_samples (Sequence[dict]): Model outputs as dicts.
        """
        for ds in data_samples:
            if hasattr(ds, 'to_dict'):
                ds = ds.to_dict()
            pred = ds.get('pred_instances')
            if pred is None or 'keypoints' not in pred:
                raise ValueError('LandmarkDumpMetric needs '
                                 'pred_instances.keypoints in each sample.')
            kpts = _np(pred['keypoints'])
            kpts = kpts.reshape(-1, kpts.shape[-1])[:, :2]
            k = kpts.shape[0]
            scores = _np(pred.get('keypoint_scores'))
            scores = (np.ones(k) if scores is None else scores.reshape(-1))
            vis = _np(pred.get('keypoints_visible'))
            vis = (np.ones(k) if vis is None else vis.reshape(-1))
            shape = ds.get('ori_shape')
            if shape is not None:
                # the one convention of the inferencer and the export
                kpts, scores, vis = clean_landmarks(kpts, scores, vis,
                                                    shape[:2])
            else:
                vis = (vis > 0).astype(int)
                kpts = np.where(vis[:, None] > 0, kpts, 0.0)
                scores = np.where(vis > 0, scores, 0.0)
            bbox = _np(ds.get('gt_instances', {}).get('bboxes'))
            crop = None
            center, scale = ds.get('input_center'), ds.get('input_scale')
            if center is not None and scale is not None:
                c = np.asarray(center, dtype=float).reshape(-1)[:2]
                s = np.asarray(scale, dtype=float).reshape(-1)[:2]
                crop = [float(v) for v in (*(c - s / 2), *(c + s / 2))]
            size = ds.get('input_size')
            self.results.append(
                dict(
                    img_path=ds.get('img_path'),
                    img_id=_py(ds.get('img_id')),
                    uld_split=ds.get('uld_split'),
                    bbox=None if bbox is None or bbox.size < 4 else
                    [float(v) for v in bbox.reshape(-1)[:4]],
                    crop=crop,
                    input_size=None if size is None else
                    [int(v) for v in np.asarray(size).reshape(-1)[:2]],
                    keypoints=kpts.astype(float).tolist(),
                    scores=scores.astype(float).tolist(),
                    visible=(vis > 0).astype(int).tolist()))

    def resolve_out_file(self) -> str:
        """Output path (see ``out_file``)."""
        if self.out_file is not None:
            return self.out_file
        log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
        if log_file:
            # Runner layout: work_dir/<timestamp>/<timestamp>.log
            return osp.join(
                osp.dirname(osp.dirname(osp.abspath(log_file))),
                'landmarks.json')
        return 'landmarks.json'

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Write the file; return no metric.

        Args:
            results (list[dict]): Collected per-sample landmarks.

        Returns:
            dict: Empty.
        """
        ks = {len(r['keypoints']) for r in results}
        if len(ks) > 1:
            raise ValueError(f'samples have different numbers of landmarks '
                             f'{sorted(ks)}')
        out = dict(
            format=LANDMARKS_FORMAT,
            num_landmarks=ks.pop() if ks else 0,
            images=results)
        path = self.resolve_out_file()
        if osp.dirname(path):
            os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(out, f)
        MMLogger.get_current_instance().info(
            f'LandmarkDumpMetric: {len(results)} samples with '
            f'{out["num_landmarks"]} landmarks written to {path}')
        return {}
