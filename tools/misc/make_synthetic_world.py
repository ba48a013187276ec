# Copyright (c) mmuld contributors. All rights reserved.
"""Draw a face world with known landmarks (5-point COCO jsons + PNGs).

Example::

    .venv/bin/python tools/misc/make_synthetic_faces.py data/face_world \\
        --num-train 400 --num-test 150 --seed 0

Writes ``OUT_DIR/images/``, ``OUT_DIR/annotations/{train,test}.json``
(whole-image boxes; left eye, right eye, nose tip, left and right mouth
corner) and ``OUT_DIR/face_world.json`` (the ranges used). Train and test
come from disjoint random streams of ``--seed``.
"""
import argparse
import os.path as osp
import sys
from dataclasses import fields

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.datasets.synthetic_faces import (FaceWorldConfig,  # noqa: E402
                                            make_face_world)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('out_dir', help='output folder (created)')
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-test', type=int, default=150)
    p.add_argument('--seed', type=int, default=0)
    defaults = FaceWorldConfig()
    for f in fields(FaceWorldConfig):
        value = getattr(defaults, f.name)
        flag = '--' + f.name.replace('_', '-')
        if isinstance(value, tuple):
            p.add_argument(flag, type=type(value[0]), nargs=2,
                           default=list(value), metavar=('LOW', 'HIGH'),
                           help=f'range (default {value[0]} {value[1]})')
        else:
            p.add_argument(flag, type=type(value), default=value,
                           help=f'(default {value})')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    kw = {}
    for f in fields(FaceWorldConfig):
        v = getattr(args, f.name)
        kw[f.name] = tuple(v) if isinstance(v, list) else v
    try:
        cfg = FaceWorldConfig(**kw)
        paths = make_face_world(args.out_dir, args.num_train, args.num_test,
                                args.seed, cfg)
    except ValueError as e:
        sys.exit(f'make_synthetic_faces: {e}')
    print(f'face world: {args.num_train} train + {args.num_test} test '
          f'images in {args.out_dir}; annotations {paths["train"]}, '
          f'{paths["test"]}')
    return paths


if __name__ == '__main__':
    main()
