# Copyright (c) mmuld contributors. All rights reserved.
"""CelebA / MAFL release -> MMPose COCO-style json (5 points, MAFL order).

Inputs (original releases): ``img_align_celeba/`` (178x218 aligned images),
``list_landmarks_align_celeba.txt`` (CelebA), ``list_eval_partition.txt``
(CelebA) and MAFL's ``training.txt`` / ``testing.txt``. Outputs:

* ``celeba_train.json``: CelebA train partition minus the MAFL test images
  (unsupervised training, ``uld_split='train'``),
* ``mafl_train.json``: MAFL training list (regressor fitting, 'train'),
* ``mafl_test.json``: MAFL test list ('test').

bbox = whole aligned image.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List

import numpy as np

from mmuld.datasets.coco_builder import build_coco_face, dump_json, make_record
from mmuld.datasets.face_schemes import FIVE_POINT_NAMES

W, H = 178, 218


def read_celeba_landmarks(path: str) -> Dict[str, np.ndarray]:
    """Parse ``list_landmarks_align_celeba.txt`` -> name: (5, 2)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'CelebA landmark file not found: {path}')
    with open(path) as f:
        lines = f.read().splitlines()
    out = {}
    for line in lines[2:]:
        parts = line.split()
        if len(parts) != 11:
            continue
        out[parts[0]] = np.array(parts[1:], dtype=np.float64).reshape(5, 2)
    if not out:
        raise ValueError(f'No landmarks parsed from {path}.')
    return out


def read_list(path: str) -> List[str]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'List file not found: {path}')
    with open(path) as f:
        return [ln.split()[0] for ln in f.read().splitlines() if ln.strip()]


def convert(celeba_root: str, mafl_root: str, out_dir: str) -> Dict[str, int]:
    """Write the three json files; returns the number of images of each."""
    lmk = read_celeba_landmarks(
        osp.join(celeba_root, 'list_landmarks_align_celeba.txt'))
    mafl_train = read_list(osp.join(mafl_root, 'training.txt'))
    mafl_test = read_list(osp.join(mafl_root, 'testing.txt'))
    test_set = set(mafl_test)
    part_file = osp.join(celeba_root, 'list_eval_partition.txt')
    partition = [ln.split() for ln in open(part_file).read().splitlines()
                 ] if osp.isfile(part_file) else []
    celeba_train = [n for n, p in partition if p == '0' and n not in test_set]
    counts = {}
    for name, files, split in (('celeba_train', celeba_train, 'train'),
                               ('mafl_train', mafl_train, 'train'),
                               ('mafl_test', mafl_test, 'test')):
        recs = [
            make_record(
                f, lmk[f], W, H, bbox=[0, 0, W, H], uld_split=split)
            for f in files if f in lmk
        ]
        if not recs:
            continue
        dump_json(
            build_coco_face(recs, keypoint_names=FIVE_POINT_NAMES),
            osp.join(out_dir, f'{name}.json'))
        counts[name] = len(recs)
    return counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('celeba_root', help='folder with CelebA lists')
    parser.add_argument('mafl_root', help='folder with training/testing.txt')
    parser.add_argument('out_dir')
    args = parser.parse_args(argv)
    print(convert(args.celeba_root, args.mafl_root, args.out_dir))


if __name__ == '__main__':
    main(sys.argv[1:])
