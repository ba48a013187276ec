# Copyright (c) mmuld contributors. All rights reserved.
"""300W-LP + LS3D-W balanced -> MMPose COCO-style json (68 points).

Mallis et al. (``DataSource/LS3D.py``): unsupervised training on 300W-LP,
regressors fit on the first 1,000 300W-LP images, evaluation on LS3D-W
balanced. Inputs:

* 300W-LP: ``<lp_root>/{AFW,HELEN,IBUG,LFPW}/*.jpg`` with landmarks in
  ``<lp_root>/landmarks/<subset>/<name>_pts.mat`` (key ``pts_3d`` as Mallis
  et al., or ``--lp-key pts_2d``). ``*_Flip`` folders are skipped.
* LS3D-W balanced: ``<ls3d_root>/**/*.jpg`` with ``<name>.t7`` (needs the
  ``torchfile`` package), ``<name>.npy`` or ``<name>.pts`` landmarks; a
  parent folder named like ``[30-60]`` / ``30-60`` is stored as
  ``yaw_range``.

Outputs ``ls3d_train.json`` (300W-LP, 'train'), ``ls3d_regressor.json``
(first ``--n-regressor`` sorted 300W-LP images, 'train') and
``ls3d_test.json`` ('test').
"""
import argparse
import glob
import os.path as osp
import re
import sys
from typing import List

import numpy as np
from PIL import Image

from mmuld.datasets.coco_builder import build_coco_face, dump_json, make_record

LP_SUBSETS = ('AFW', 'HELEN', 'IBUG', 'LFPW')


def read_pts(path: str) -> np.ndarray:
    """Read landmarks from ``.pts`` (iBUG), ``.npy`` or ``.t7``."""
    if path.endswith('.npy'):
        return np.load(path).astype(np.float64)[:, :2]
    if path.endswith('.t7'):
        try:
            import torchfile
        except ImportError as e:
            raise ImportError('Reading LS3D-W .t7 files needs `pip install '
                              'torchfile`.') from e
        return np.asarray(torchfile.load(path), dtype=np.float64)[:, :2]
    lines = open(path).read().splitlines()
    start = lines.index('{') + 1
    end = lines.index('}')
    return np.array([ln.split() for ln in lines[start:end]],
                    dtype=np.float64)


def _image_size(path: str):
    with Image.open(path) as im:
        return im.size


def lp_records(lp_root: str, key: str = 'pts_3d') -> List[dict]:
    from scipy.io import loadmat
    recs = []
    for sub in LP_SUBSETS:
        for img in sorted(glob.glob(osp.join(lp_root, sub, '*.jpg'))):
            name = osp.splitext(osp.basename(img))[0]
            mat = osp.join(lp_root, 'landmarks', sub, f'{name}_pts.mat')
            if not osp.isfile(mat):
                raise FileNotFoundError(f'Landmarks missing for {img}: {mat}')
            pts = np.asarray(loadmat(mat)[key], dtype=np.float64)[:, :2]
            w, h = _image_size(img)
            recs.append(
                make_record(
                    osp.relpath(img, lp_root), pts, w, h, uld_split='train'))
    if not recs:
        raise FileNotFoundError(f'No 300W-LP images under {lp_root}.')
    return recs


def ls3d_records(ls3d_root: str) -> List[dict]:
    recs = []
    for img in sorted(
            glob.glob(osp.join(ls3d_root, '**', '*.jpg'), recursive=True)):
        stem = osp.splitext(img)[0]
        ann = next((stem + e for e in ('.npy', '.pts', '.t7')
                    if osp.isfile(stem + e)), None)
        if ann is None:
            raise FileNotFoundError(f'No landmarks (.npy/.pts/.t7) for {img}')
        w, h = _image_size(img)
        extra = dict(uld_split='test')
        m = re.search(r'\[?(\d+)\s*-\s*(\d+)\]?$',
                      osp.basename(osp.dirname(img)))
        if m:
            extra['yaw_range'] = [int(m.group(1)), int(m.group(2))]
        recs.append(
            make_record(
                osp.relpath(img, ls3d_root), read_pts(ann), w, h, **extra))
    if not recs:
        raise FileNotFoundError(f'No LS3D-W images under {ls3d_root}.')
    return recs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('lp_root')
    parser.add_argument('ls3d_root')
    parser.add_argument('out_dir')
    parser.add_argument('--lp-key', default='pts_3d')
    parser.add_argument('--n-regressor', type=int, default=1000)
    args = parser.parse_args(argv)
    train = lp_records(args.lp_root, args.lp_key)
    dump_json(build_coco_face(train), osp.join(args.out_dir,
                                               'ls3d_train.json'))
    dump_json(
        build_coco_face(train[:args.n_regressor]),
        osp.join(args.out_dir, 'ls3d_regressor.json'))
    test = ls3d_records(args.ls3d_root)
    dump_json(build_coco_face(test), osp.join(args.out_dir, 'ls3d_test.json'))
    print(dict(train=len(train), test=len(test)))


if __name__ == '__main__':
    main(sys.argv[1:])
