# Copyright (c) mmuld contributors. All rights reserved.
"""One RoI per image of a folder or COCO json: the library behind
``tools/detect_rois.py``.

Output of :func:`detect_rois`::

    {"rois": {key: [x1, y1, x2, y2] or null},
     "source": {key: provider name | "none" | "error"},
     "counts": {provider name: n, "none": n, "error": n},
     "errors": {key: message}}

``key`` is the image path relative to the image directory / data root (the
``file_name`` of COCO json input). Unreadable images are reported as
warnings and counted under ``"error"``; they never stop the run.
"""
import json
import os
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Tuple

import mmcv
from mmengine.logging import MMLogger, print_log
from mmengine.utils import ProgressBar

from .annotation import AnnotationRoIProvider
from .fallback import FallbackRoIProvider
from .mmdet_provider import MMDetRoIProvider
from .whole_image import WholeImageRoIProvider

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def collect_items(inputs: str,
                  data_root: Optional[str] = None) -> Tuple[str, List[dict]]:
    """List the images to process.

    Args:
        inputs (str): Image directory or COCO-style json.
        data_root (str, optional): Image root of a json input (default: the
            json's directory).

    Returns:
        tuple[str, list[dict]]: Image root and one meta dict per image with
        ``key``, ``img_path`` and (json input) ``img_id``, ``width``,
        ``height`` and ``bbox`` (xywh, the largest annotated box of the
        image).
    """
    if osp.isdir(inputs):
        items = []
        for dirpath, _, files in os.walk(inputs):
            for f in sorted(files):
                if f.lower().endswith(IMG_EXTS):
                    path = osp.join(dirpath, f)
                    items.append(
                        dict(key=osp.relpath(path, inputs), img_path=path))
        items.sort(key=lambda m: m['key'])
        return inputs, items
    if not osp.isfile(inputs):
        raise FileNotFoundError(f'{inputs} is neither a directory nor a file')
    with open(inputs) as f:
        coco = json.load(f)
    if not isinstance(coco, dict) or 'images' not in coco:
        raise ValueError(f'{inputs} is not a COCO-style json (no "images")')
    root = data_root if data_root is not None else osp.dirname(inputs)
    boxes = {}
    for ann in coco.get('annotations', []):
        if 'bbox' not in ann:
            continue
        w, h = ann['bbox'][2], ann['bbox'][3]
        prev = boxes.get(ann['image_id'])
        if prev is None or w * h > prev[2] * prev[3]:
            boxes[ann['image_id']] = ann['bbox']
    items = []
    for img in coco['images']:
        meta = dict(
            key=img['file_name'],
            img_path=osp.join(root, img['file_name']),
            img_id=img['id'])
        for k in ('width', 'height'):
            if k in img:
                meta[k] = img[k]
        if img['id'] in boxes:
            meta['bbox'] = boxes[img['id']]
        items.append(meta)
    return root, items


def build_roi_chain(det_config: Optional[str] = None,
                    det_checkpoint: Optional[str] = None,
                    device: str = 'cpu',
                    classes: Optional[Sequence[str]] = None,
                    score_thr: float = 0.3,
                    annotation: bool = True,
                    whole_image: bool = True) -> FallbackRoIProvider:
    """Build the provider chain: detector, annotation box, whole image.

    Args:
        det_config (str, optional): mmdet config; no detector when None.
        det_checkpoint (str, optional): mmdet checkpoint (random weights,
            with a warning, when None).
        device (str): Detector device. Defaults to ``'cpu'``.
        classes (Sequence[str], optional): Detector classes to keep.
        score_thr (float): Detector score threshold. Defaults to 0.3.
        annotation (bool): Fall back to the annotation box (json input).
        whole_image (bool): Fall back to the whole image.

    Returns:
        FallbackRoIProvider: The chain, tried in this order.
    """
    providers = []
    if det_config is not None:
        if det_checkpoint is None:
            warnings.warn('--det-checkpoint not given: the detector has '
                          'random weights and its boxes are meaningless')
        providers.append(
            MMDetRoIProvider(
                det_config,
                det_checkpoint,
                device=device,
                classes=classes,
                score_thr=score_thr))
    if annotation:
        providers.append(AnnotationRoIProvider(bbox_format='xywh'))
    if whole_image:
        providers.append(WholeImageRoIProvider())
    if not providers:
        raise ValueError('no RoI provider: give a detector config, a json '
                         'input or allow the whole-image fallback')
    return FallbackRoIProvider(providers)


def _logger() -> MMLogger:
    name = 'mmuld_detect_rois'
    if MMLogger.check_instance_created(name):
        return MMLogger.get_instance(name)
    return MMLogger.get_instance(name, log_level='INFO')


def detect_rois(items: Sequence[dict], provider: FallbackRoIProvider,
                progress: bool = True) -> dict:
    """Run a provider chain on every image.

    Args:
        items (Sequence[dict]): Image metas from :func:`collect_items`.
        provider (FallbackRoIProvider): The chain
            (:func:`build_roi_chain`).
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        dict: ``rois``, ``source``, ``counts`` and ``errors`` (module
        docstring).
    """
    logger = _logger()
    rois, source, errors = {}, {}, {}
    n_error = 0
    bar = ProgressBar(len(items)) if progress else None
    for meta in items:
        key = meta['key']
        try:
            img = mmcv.imread(meta['img_path'])
            if img is None:
                raise ValueError('could not decode the image')
        except Exception as e:  # corrupt / missing image: report, go on
            msg = f'{type(e).__name__}: {e}'
            warnings.warn(f'cannot read {meta["img_path"]}: {msg}')
            print_log(
                f'cannot read {meta["img_path"]}: {msg}', logger, level=30)
            rois[key], source[key], errors[key] = None, 'error', msg
            n_error += 1
        else:
            roi = provider(img, meta)
            rois[key] = None if roi is None else [float(v) for v in roi]
            source[key] = provider.last_source or 'none'
        if bar is not None:
            bar.update()
    counts = dict(provider.counts)
    counts['error'] = n_error
    return dict(rois=rois, source=source, counts=counts, errors=errors)


def write_rois(out: dict, path: str) -> None:
    """Write the output of :func:`detect_rois` as JSON (the ``roi_file`` of
    :class:`LoadRoIs`), creating the directory.

    Args:
        out (dict): Output of :func:`detect_rois`.
        path (str): JSON file.
    """
    out_dir = osp.dirname(osp.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(out, f, indent=1)
