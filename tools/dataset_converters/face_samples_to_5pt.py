# Copyright (c) mmuld contributors. All rights reserved.
"""Combine ``data/face_samples/*/test_*.json`` into 5-point json files.

Each source json (300W, 300W-LP, AFLW, COFW, LaPa, WFLW; MMPose COCO-style)
is mapped to the MAFL 5-point set (one face per image: the largest
annotated box) with
:data:`mmuld.datasets.face_schemes.MAFL5_MAPPINGS`. Split (deterministic):
images of each source sorted by file name; the first of the sources listed
in ``--test-sources`` goes to test, everything else to train (default
8 train / 4 test). Writes ``uld_5pt_train.json`` and ``uld_5pt_test.json``
with image paths relative to the face_samples folder and ``uld_split`` in
each annotation.
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, Sequence

import numpy as np

from mmuld.datasets.coco_builder import build_coco_face, dump_json, make_record
from mmuld.datasets.face_schemes import (FIVE_POINT_NAMES, get_mafl5_mapping,
                                         map_keypoints)

DEFAULT_TEST_SOURCES = ('300w', 'aflw', 'cofw', 'wflw')


def convert(root: str,
            test_sources: Sequence[str] = DEFAULT_TEST_SOURCES,
            out_dir: str = None) -> Dict[str, int]:
    """Build and write the two files; returns image counts per split."""
    files = sorted(glob.glob(osp.join(root, '*', '*.json')))
    files = [f for f in files if not osp.basename(f).startswith('uld_5pt')]
    if not files:
        raise FileNotFoundError(f'No source json under {root}/*/.')
    recs = dict(train=[], test=[])
    for path in files:
        src = osp.basename(osp.dirname(path))
        data = json.load(open(path))
        imgs = {im['id']: im for im in data['images']}
        # one face per image: the largest annotated bbox
        largest = {}
        for a in data['annotations']:
            area = a['bbox'][2] * a['bbox'][3]
            if area > largest.get(a['image_id'], (-1, None))[0]:
                largest[a['image_id']] = (area, a)
        anns = sorted((a for _, a in largest.values()),
                      key=lambda a: imgs[a['image_id']]['file_name'])
        for i, ann in enumerate(anns):
            im = imgs[ann['image_id']]
            kp = np.array(ann['keypoints'], dtype=np.float64).reshape(-1, 3)
            pts, vis = map_keypoints(kp[:, :2], np.minimum(kp[:, 2], 1),
                                     get_mafl5_mapping(len(kp)))
            split = 'test' if (i == 0 and src in test_sources) else 'train'
            recs[split].append(
                make_record(
                    f'{src}/{im["file_name"]}',
                    pts,
                    im['width'],
                    im['height'],
                    bbox=ann['bbox'],
                    visible=vis,
                    uld_split=split,
                    source=src,
                    source_num_keypoints=int(len(kp))))
    out_dir = out_dir or root
    for split, rs in recs.items():
        if not rs:
            raise ValueError(f'Split {split} is empty.')
        dump_json(
            build_coco_face(rs, keypoint_names=FIVE_POINT_NAMES),
            osp.join(out_dir, f'uld_5pt_{split}.json'))
    return {k: len(v) for k, v in recs.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--root', default='data/face_samples')
    parser.add_argument(
        '--test-sources', nargs='+', default=list(DEFAULT_TEST_SOURCES))
    parser.add_argument('--out-dir', default=None)
    args = parser.parse_args(argv)
    print(convert(args.root, args.test_sources, args.out_dir))


if __name__ == '__main__':
    main(sys.argv[1:])
