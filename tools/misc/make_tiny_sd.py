# Copyright (c) mmuld contributors. All rights reserved.
"""Save a tiny random Stable Diffusion model in diffusers layout.

Example::

    python tools/misc/make_tiny_sd.py work_dirs/tiny_sd
"""
import argparse

from mmuld.testing import build_tiny_sd


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build a tiny SD model (unet/, vae/, text_encoder/, '
        'tokenizer/, scheduler/) for tests and demos.')
    parser.add_argument('out_dir', help='output directory')
    parser.add_argument('--seed', type=int, default=0, help='weight seed')
    parser.add_argument(
        '--sample-size',
        type=int,
        default=32,
        help='nominal image size stored in the configs (multiple of 16)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    path = build_tiny_sd(args.out_dir, seed=args.seed,
                         sample_size=args.sample_size)
    print(f'Tiny Stable Diffusion model saved to {path}')


if __name__ == '__main__':
    main()
