# Copyright (c) mmuld contributors. All rights reserved.
"""Do a diffusion model's frozen features find known keypoints?

Nearest-feature correspondence (mmuld.diffusion.probe): each keypoint's
mean feature over the reference images is searched for on each query
image; prints the mean error in units of the image side for every
diffusers folder given (e.g. a model of train_small_diffusion.py against
the same architecture with random weights), after the baseline that puts
each keypoint at its mean position: features know something only when
they beat it::

    .venv/bin/python tools/analysis/diffusion_probe.py --data-root DATA \\
        --ref-ann annotations/train.json --query-ann annotations/test.json \\
        DATA/small_sd OTHER_SD
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.diffusion.probe import (keypoint_probe_error,  # noqa: E402
                                   load_keypoint_images,
                                   mean_position_error)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('models', nargs='+', help='diffusers folders')
    p.add_argument('--data-root', required=True)
    p.add_argument('--ref-ann', required=True, help='reference json')
    p.add_argument('--query-ann', required=True, help='query json')
    p.add_argument('--size', type=int, default=64, help='image side')
    p.add_argument('--num-ref', type=int, default=200)
    p.add_argument('--num-query', type=int, default=150)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    from mmuld.models.backbones import StableDiffusionBackbone
    args = parse_args(argv)
    ref = load_keypoint_images(args.data_root,
                               osp.join(args.data_root, args.ref_ann),
                               args.size, args.num_ref)
    query = load_keypoint_images(args.data_root,
                                 osp.join(args.data_root, args.query_ann),
                                 args.size, args.num_query)
    errors = {'mean position': mean_position_error(ref[1], query[1])}
    print(f'mean position (baseline): keypoint probe error '
          f'{errors["mean position"]:.4f} of the image side')
    for path in args.models:
        backbone = StableDiffusionBackbone(
            pretrained=path, agg_channels=8, out_stride=4)
        errors[path] = keypoint_probe_error(backbone, *ref, *query)
        print(f'{path}: keypoint probe error {errors[path]:.4f} of the '
              f'image side ({len(ref[0])} reference, {len(query[0])} query '
              'images)')
    return errors


if __name__ == '__main__':
    main()
