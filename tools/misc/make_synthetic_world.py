# Copyright (c) mmuld contributors. All rights reserved.
"""Draw a world with known landmarks (COCO keypoint jsons + PNGs).

Examples::

    # the main job's face world
    .venv/bin/python tools/misc/make_synthetic_world.py face data/face_world
    # wide poses: +-60 degrees of roll, +-75 of yaw (far parts hidden)
    .venv/bin/python tools/misc/make_synthetic_world.py face data/wide \\
        --rotation 60 --yaw 75 --seed 3
    # another category: cat heads (eyes, nose, ear tips)
    .venv/bin/python tools/misc/make_synthetic_world.py cat data/cats

Writes ``OUT_DIR/images/``, ``OUT_DIR/annotations/{train,test}.json``
(whole-image boxes, 5 named points per image; hidden points have
visibility 1) and ``OUT_DIR/<category>_world.json`` (the ranges used).
Train and test come from disjoint random streams of ``--seed``.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.datasets.synthetic_common import (  # noqa: E402
    add_config_options, config_from_options)
from mmuld.datasets.synthetic_worlds import WORLDS, make_world  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='category', required=True,
                           metavar='{' + ','.join(WORLDS) + '}')
    for name, world in WORLDS.items():
        q = sub.add_parser(name, help=f'a {name} world')
        q.add_argument('out_dir', help='output folder (created)')
        q.add_argument('--num-train', type=int, default=400)
        q.add_argument('--num-test', type=int, default=150)
        q.add_argument('--seed', type=int, default=0)
        add_config_options(q, world.config)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    world = WORLDS[args.category]
    try:
        paths = make_world(args.category, args.out_dir, args.num_train,
                           args.num_test, args.seed,
                           config_from_options(args, world.config))
    except ValueError as e:
        sys.exit(f'make_synthetic_world: {e}')
    print(f'{args.category} world: {args.num_train} train + '
          f'{args.num_test} test images in {args.out_dir}; annotations '
          f'{paths["train"]}, {paths["test"]}')
    return paths


if __name__ == '__main__':
    main()
