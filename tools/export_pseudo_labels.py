# Copyright (c) mmuld contributors. All rights reserved.
"""Export an mmuld model's landmarks as an MMPose COCO-style dataset.

Writes ``{name}.json`` (COCO keypoints, K discovered landmarks ``lm0`` ...
with [x, y, v] each, the dataset RoI as bbox) and ``{name}_info.py`` (the
MMPose ``dataset_info`` with flip partners found under horizontal flips),
ready for ``CocoDataset(ann_file=..., metainfo=dict(from_file=...))``.

Example::

    python tools/export_pseudo_labels.py configs/dldpp_face_samples_demo.py \\
        work_dirs/dldpp_face_samples_demo/stage4_dldpp.pth \\
        --out-dir work_dirs/uld_to_mmpose/pseudo_labels --split train
"""
import argparse

import numpy as np
from mmengine.config import DictAction

from mmuld.apis import export_pseudo_labels


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export discovered landmarks as a COCO keypoint dataset')
    parser.add_argument('config', help='mmuld model config')
    parser.add_argument('checkpoint', help='mmuld checkpoint')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument(
        '--split',
        choices=['train', 'test', 'all'],
        default='train',
        help='train: cfg.train_dataloader.dataset, test: '
        'cfg.test_dataloader.dataset, all: both (duplicates removed)')
    parser.add_argument(
        '--name', default='uld_pseudo_labels', help='dataset / file name')
    parser.add_argument(
        '--category', default='face', help='COCO category name')
    parser.add_argument(
        '--img-root',
        default=None,
        help='root of the file names (default: common image folder)')
    parser.add_argument(
        '--no-flip-pairs',
        action='store_true',
        help='do not estimate flip partners (all landmarks centre)')
    parser.add_argument(
        '--flip-max-dist',
        type=float,
        default=0.2,
        help='largest mean distance (x sqrt(RoI area)) of a flip pair; '
        '<= 0: plain Hungarian matching')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides, e.g. model.backbone.pretrained=DIR')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    res = export_pseudo_labels(
        args.config,
        args.checkpoint,
        args.out_dir,
        split=args.split,
        cfg_options=args.cfg_options,
        device=args.device,
        batch_size=args.batch_size,
        img_root=args.img_root,
        dataset_name=args.name,
        category_name=args.category,
        find_flip_pairs=not args.no_flip_pairs,
        flip_max_distance=args.flip_max_dist
        if args.flip_max_dist > 0 else None)
    print(f'annotations: {res["ann_file"]}\n'
          f'dataset_info: {res["info_file"]}\n'
          f'image root: {res["img_root"]}\n'
          f'{res["num_images"]} images, K={res["num_keypoints"]}, '
          f'flip pairs: {res["flip_pairs"]}')
    with np.printoptions(precision=3, suppress=True, linewidth=120):
        print('mean RoI-normalised distance landmark i -> flipped '
              f'landmark j:\n{res["flip_distance"]}')
    return res


if __name__ == '__main__':
    main()
