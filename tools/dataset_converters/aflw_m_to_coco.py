# Copyright (c) mmuld contributors. All rights reserved.
"""AFLW_M (5 points) -> MMPose COCO-style json.

Input: list files in MTFL format, one image per line:
``path x1 x2 x3 x4 x5 y1 y2 y3 y4 y5 [attributes...]`` (points in MAFL
order), e.g. the AFLW_M train / test lists of Thewlis et al. (10,122 /
2,995 images). An optional ``--yaw-file`` (``path,yaw`` per line, degrees)
adds a ``yaw`` field used by the yaw breakdown of the metric.

RoI (``--bbox``): ``whole`` (default) uses the whole image, as the AFLW_M
images are already face crops; ``landmarks`` uses the GT landmark box
padded by 30 %, which leaks ground truth into the crop and is only meant
for uncropped images when no detector is at hand (prefer
``tools/detect_rois.py`` with the ``LoadRoIs`` transform).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional

import numpy as np
from PIL import Image

from mmuld.datasets.coco_builder import build_coco_face, dump_json, make_record
from mmuld.datasets.face_schemes import FIVE_POINT_NAMES


def read_mtfl_list(path: str) -> Dict[str, np.ndarray]:
    """Parse an MTFL-format list -> path: (5, 2)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'List file not found: {path}')
    out = {}
    for line in open(path).read().splitlines():
        parts = line.replace('\\', '/').split()
        if len(parts) < 11:
            continue
        v = np.array(parts[1:11], dtype=np.float64)
        out[parts[0]] = np.stack([v[:5], v[5:]], axis=1)
    if not out:
        raise ValueError(f'No landmarks parsed from {path}.')
    return out


def convert(img_root: str, list_file: str, out_file: str, split: str,
            yaw_file: Optional[str] = None, bbox: str = 'whole') -> int:
    """Convert one list; returns the number of images written."""
    yaws = {}
    if yaw_file:
        for line in open(yaw_file).read().splitlines():
            if ',' in line:
                k, v = line.rsplit(',', 1)
                yaws[k.strip()] = float(v)
    recs = []
    for rel, pts in read_mtfl_list(list_file).items():
        path = osp.join(img_root, rel)
        if not osp.isfile(path):
            raise FileNotFoundError(f'Image listed in {list_file} missing: '
                                    f'{path}')
        with Image.open(path) as im:
            w, h = im.size
        extra = dict(uld_split=split)
        if rel in yaws:
            extra['yaw'] = yaws[rel]
        box = [0, 0, w, h] if bbox == 'whole' else None
        recs.append(
            make_record(rel, pts, w, h, bbox=box, bbox_pad=0.3, **extra))
    dump_json(build_coco_face(recs, keypoint_names=FIVE_POINT_NAMES),
              out_file)
    return len(recs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('img_root')
    parser.add_argument('list_file')
    parser.add_argument('out_file')
    parser.add_argument('--split', choices=['train', 'test'], required=True)
    parser.add_argument('--yaw-file', default=None)
    parser.add_argument(
        '--bbox', choices=['whole', 'landmarks'], default='whole')
    args = parser.parse_args(argv)
    print(convert(args.img_root, args.list_file, args.out_file, args.split,
                  args.yaw_file, args.bbox))


if __name__ == '__main__':
    main(sys.argv[1:])
