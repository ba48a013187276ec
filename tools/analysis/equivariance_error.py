# Copyright (c) mmuld contributors. All rights reserved.
"""Equivariance error of a landmark model under known rotations.

Needs no labels: every test image is compared with rotated copies of its
preprocessed input (see :mod:`mmuld.evaluation.equivariance_eval`). The
library side (model, split loader, JSON output) is
:func:`mmuld.apis.checkpoint_equivariance`; this file is its command line.

Example::

    python tools/analysis/equivariance_error.py \
        configs/dldpp_face_samples_demo.py work_dirs/demo/iter_22.pth \
        --angles -30 -15 15 30 --split test --out equivariance.json
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmuld.apis.equivariance import (  # noqa: E402
    checkpoint_equivariance, format_equivariance_table)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Equivariance error under known rotations (no labels)')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--angles',
        type=float,
        nargs='+',
        default=[-30.0, -15.0, 15.0, 30.0],
        help='rotation angles in degrees (counter-clockwise positive)')
    parser.add_argument(
        '--flip', action='store_true', help='also evaluate a horizontal flip')
    parser.add_argument(
        '--split',
        default='test',
        help="keep samples with this `uld_split` ('all': every sample)")
    parser.add_argument(
        '--norm',
        choices=['input', 'bbox'],
        default='input',
        help='normaliser: sqrt(w*h) of the input crop or of the RoI box')
    parser.add_argument(
        '--max-images', type=int, default=None, help='stop after N images')
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', help='JSON file for the results')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = checkpoint_equivariance(
        args.config,
        args.checkpoint,
        angles=args.angles,
        flip=args.flip,
        split=None if args.split == 'all' else args.split,
        norm=args.norm,
        max_images=args.max_images,
        batch_size=args.batch_size,
        device=args.device,
        cfg_options=args.cfg_options,
        out=args.out)
    print(format_equivariance_table(result))
    if args.out:
        print(f'results written to {args.out}')
    return result


if __name__ == '__main__':
    main()
