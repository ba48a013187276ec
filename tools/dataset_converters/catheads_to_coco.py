# Copyright (c) mmuld contributors. All rights reserved.
"""CAT dataset (CatHeads, 9 points) -> MMPose COCO-style json.

Input: the CAT release folders ``CAT_00`` ... ``CAT_06`` with ``X.jpg`` and
``X.jpg.cat`` (``9 x1 y1 ... x9 y9``). The split is by folder
(``--train-folders`` / ``--test-folders``); set them to the split you
compare against (docs/datasets.md).
"""
import argparse
import glob
import os.path as osp
import sys
from typing import Sequence

import numpy as np
from PIL import Image

from mmuld.datasets.coco_builder import build_coco_face, dump_json, make_record
from mmuld.datasets.face_schemes import CAT_NAMES


def read_cat_file(path: str) -> np.ndarray:
    """Parse a ``.cat`` file -> (9, 2)."""
    vals = open(path).read().split()
    if not vals or int(vals[0]) != 9 or len(vals) < 19:
        raise ValueError(f'{path} is not a 9-point .cat annotation.')
    return np.array(vals[1:19], dtype=np.float64).reshape(9, 2)


def convert(root: str, folders: Sequence[str], out_file: str,
            split: str) -> int:
    """Convert the images of ``folders``; returns the count."""
    recs = []
    for folder in folders:
        d = osp.join(root, folder)
        if not osp.isdir(d):
            raise FileNotFoundError(f'CAT folder not found: {d}')
        for cat in sorted(glob.glob(osp.join(d, '*.jpg.cat'))):
            img = cat[:-4]
            with Image.open(img) as im:
                w, h = im.size
            pts = read_cat_file(cat)
            recs.append(
                make_record(
                    osp.relpath(img, root), pts, w, h, bbox_pad=0.2,
                    uld_split=split))
    dump_json(build_coco_face(recs, 'cat_head', CAT_NAMES), out_file)
    return len(recs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root')
    parser.add_argument('out_dir')
    parser.add_argument(
        '--train-folders',
        nargs='+',
        default=['CAT_00', 'CAT_01', 'CAT_02', 'CAT_03', 'CAT_04', 'CAT_05'])
    parser.add_argument('--test-folders', nargs='+', default=['CAT_06'])
    args = parser.parse_args(argv)
    n_tr = convert(args.root, args.train_folders,
                   osp.join(args.out_dir, 'catheads_train.json'), 'train')
    n_te = convert(args.root, args.test_folders,
                   osp.join(args.out_dir, 'catheads_test.json'), 'test')
    print(dict(train=n_tr, test=n_te))


if __name__ == '__main__':
    main(sys.argv[1:])
