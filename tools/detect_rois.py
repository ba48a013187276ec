# Copyright (c) mmuld contributors. All rights reserved.
"""Compute one RoI (face box) per image and write them to a JSON file.

Providers are tried in order: the mmdet detector (``--det-config``), the
dataset annotation box (COCO json input only, unless ``--no-annotation``)
and the whole image (unless ``--no-whole-image``). Output::

    {"rois": {key: [x1, y1, x2, y2] or null},
     "source": {key: provider name | "none" | "error"},
     "counts": {provider name: n, "none": n, "error": n},
     "errors": {key: message}}

``key`` is the image path relative to the image directory / data root (the
``file_name`` of COCO json input). Unreadable images are reported as
warnings and counted under ``"error"``; they never stop the run.

Example::

    python tools/detect_rois.py data/300w/test.json --data-root data/300w \\
        --det-config rtmdet_tiny_8xb32-300e_coco.py --det-checkpoint w.pth \\
        --classes person --out rois.json
"""
import argparse
import json
import os
import os.path as osp
import warnings
from typing import List, Tuple

import mmcv
from mmengine.logging import MMLogger, print_log
from mmengine.utils import ProgressBar

from mmuld.rois import (AnnotationRoIProvider, FallbackRoIProvider,
                        MMDetRoIProvider, WholeImageRoIProvider)

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Detect one RoI per image (mmdet detector with '
        'annotation / whole-image fallback)')
    parser.add_argument(
        'inputs', help='image directory or MMPose COCO-style json file')
    parser.add_argument(
        '--data-root',
        default=None,
        help='image root of a json input (default: the json directory)')
    parser.add_argument('--det-config', default=None, help='mmdet config')
    parser.add_argument(
        '--det-checkpoint',
        default=None,
        help='mmdet checkpoint (random weights if absent)')
    parser.add_argument(
        '--classes',
        nargs='+',
        default=None,
        help='detector class names to keep (default: all)')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--no-annotation',
        action='store_true',
        help='do not fall back to the json annotation boxes')
    parser.add_argument(
        '--no-whole-image',
        action='store_true',
        help='do not fall back to the whole image')
    parser.add_argument('--out', default='rois.json', help='output json')
    return parser.parse_args(argv)


def collect_items(inputs: str,
                  data_root: str = None) -> Tuple[str, List[dict]]:
    """List the images to process.

    Args:
        inputs (str): Image directory or COCO-style json.
        data_root (str, optional): Image root of a json input.

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
    if 'images' not in coco:
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


def build_provider(args: argparse.Namespace,
                   is_json: bool) -> FallbackRoIProvider:
    """Build the provider chain from the command line arguments."""
    providers = []
    if args.det_config is not None:
        if args.det_checkpoint is None:
            warnings.warn('--det-checkpoint not given: the detector has '
                          'random weights and its boxes are meaningless')
        providers.append(
            MMDetRoIProvider(
                args.det_config,
                args.det_checkpoint,
                device=args.device,
                classes=args.classes,
                score_thr=args.score_thr))
    if is_json and not args.no_annotation:
        providers.append(AnnotationRoIProvider(bbox_format='xywh'))
    if not args.no_whole_image:
        providers.append(WholeImageRoIProvider())
    if not providers:
        raise ValueError('no RoI provider: give --det-config, a json input '
                         'or allow the whole-image fallback')
    return FallbackRoIProvider(providers)


def detect_rois(args: argparse.Namespace) -> dict:
    """Run the provider chain on every image and return the output dict."""
    name = 'mmuld_detect_rois'
    if MMLogger.check_instance_created(name):
        logger = MMLogger.get_instance(name)
    else:
        logger = MMLogger.get_instance(name, log_level='INFO')
    is_json = not osp.isdir(args.inputs)
    _, items = collect_items(args.inputs, args.data_root)
    if not items:
        raise ValueError(f'no image found in {args.inputs}')
    provider = build_provider(args, is_json)
    rois, source, errors = {}, {}, {}
    n_error = 0
    bar = ProgressBar(len(items))
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
            bar.update()
            continue
        roi = provider(img, meta)
        rois[key] = None if roi is None else [float(v) for v in roi]
        source[key] = provider.last_source or 'none'
        bar.update()
    counts = dict(provider.counts)
    counts['error'] = n_error
    return dict(rois=rois, source=source, counts=counts, errors=errors)


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = detect_rois(args)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=1)
    print(f'\nwrote {len(out["rois"])} RoIs to {args.out}; counts: '
          f'{out["counts"]}')
    return out


if __name__ == '__main__':
    main()
