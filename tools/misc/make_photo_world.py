# Copyright (c) mmuld contributors. All rights reserved.
"""Draw a learnability world from a few labelled photographs.

Example (the 12 real faces shipped in data/face_samples)::

    .venv/bin/python tools/misc/make_photo_world.py data/photo_world \\
        --ann data/face_samples/uld_5pt_train.json \\
              data/face_samples/uld_5pt_test.json \\
        --img-root data/face_samples data/face_samples

Each image is one source photograph cropped around its object box and
turned by a random rotation, scale and shift (the landmarks with it);
train and test images come from disjoint source photographs. Writes the
layout of make_synthetic_world.py.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.datasets.photo_world import (PhotoWorldConfig,  # noqa: E402
                                        make_photo_world)
from mmuld.datasets.synthetic_common import (  # noqa: E402
    add_config_options, config_from_options)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('out_dir', help='output folder (created)')
    p.add_argument('--ann', nargs='+', required=True,
                   help='COCO keypoint jsons of the photographs')
    p.add_argument('--img-root', nargs='+', required=True,
                   help='image folder of each json')
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-test', type=int, default=150)
    p.add_argument('--seed', type=int, default=0)
    add_config_options(p, PhotoWorldConfig)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if len(args.ann) != len(args.img_root):
        sys.exit('make_photo_world: give one --img-root per --ann')
    try:
        paths = make_photo_world(
            args.out_dir, args.ann, args.img_root, args.num_train,
            args.num_test, args.seed,
            config_from_options(args, PhotoWorldConfig))
    except (ValueError, OSError) as e:
        sys.exit(f'make_photo_world: {e}')
    print(f'photo world: {args.num_train} train + {args.num_test} test '
          f'images in {args.out_dir}; annotations {paths["train"]}, '
          f'{paths["test"]}')
    return paths


if __name__ == '__main__':
    main()
