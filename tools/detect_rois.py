# Copyright (c) mmuld contributors. All rights reserved.
"""Compute one RoI (face box) per image and write them to a JSON file.

A thin command line over :mod:`mmuld.rois.detect` (``collect_items``,
``build_roi_chain``, ``detect_rois``, ``write_rois``).

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
import os.path as osp

from mmuld.rois.detect import (build_roi_chain, collect_items, detect_rois,
                               write_rois)


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


def main(argv=None) -> dict:
    """Detect the RoIs and write them to ``--out``.

    Args:
        argv (list[str], optional): Command line (default: ``sys.argv``).

    Returns:
        dict: What was written (see :mod:`mmuld.rois.detect`).
    """
    args = parse_args(argv)
    is_json = not osp.isdir(args.inputs)
    _, items = collect_items(args.inputs, args.data_root)
    if not items:
        raise ValueError(f'no image found in {args.inputs}')
    provider = build_roi_chain(
        det_config=args.det_config,
        det_checkpoint=args.det_checkpoint,
        device=args.device,
        classes=args.classes,
        score_thr=args.score_thr,
        annotation=is_json and not args.no_annotation,
        whole_image=not args.no_whole_image)
    out = detect_rois(items, provider)
    write_rois(out, args.out)
    print(f'\nwrote {len(out["rois"])} RoIs to {args.out}; counts: '
          f'{out["counts"]}')
    return out


if __name__ == '__main__':
    main()
