# Copyright (c) mmuld contributors. All rights reserved.
"""Benchmark the Stable Diffusion feature backbone.

Builds the SD-1.5 architecture with random weights in code (UNet2DCondition
and AutoencoderKL with the SD-1.5 configs, a random (1, 77, 768) tensor in
place of the CLIP embedding of the empty prompt; nothing is downloaded), or
with ``--tiny`` (default on the CPU) the tiny test model of
``mmuld.testing.build_tiny_sd``, and reports for ``StableDiffusionBackbone``:

* images/s of the batched extractor (all timesteps of the batch in one UNet
  call, stopped after the last tapped layer) and of the full forward
  (extractor + aggregator, no grad);
* FLOPs per image (``torch.utils.flop_counter.FlopCounterMode`` on one call)
  and the fraction of the accelerator peak reached. ``--peak-tflops``
  defaults to 790, the dense bf16 figure used for the H100 in
  ``docs/environment.md`` (the data-sheet value of an H100 SXM is 989);
  pass the peak of your card and dtype;
* peak memory (CUDA: ``max_memory_allocated``; CPU: the tensors of one
  forward and the weights, counted by ``TensorMemoryTracker``);
* speed-up over the naive extractor (fp32, one image and one timestep per
  full UNet call, features copied to the host), measured in the same run,
  and the largest relative difference between the two feature sets;
* with an ``sd_input_size`` that differs from the crop, the cost of that
  resize: the extractor's images/s with SD at the crop size, for
  comparison.

The backbone settings (``out_stride``, ``agg_channels``, ``sd_input_size``,
the aggregator options) default to those of ``--config`` (the model of
``configs/dldpp_aflw.py``); ``--out-stride`` and ``--sd-input-size``
override them. ``--tiny`` ignores the config's ``sd_input_size`` (set for
SD-1.5) unless given on the command line.

Examples::

    python tools/analysis/benchmark_backbone.py --device cpu --tiny
    python tools/analysis/benchmark_backbone.py --device cuda \
        --batch-size 16 --img-size 512 --timesteps 5 --dtype bf16
    python tools/analysis/benchmark_backbone.py --device cuda \
        --batch-size 16 --img-size 256 --sd-input-size 512
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.engine.benchmark.backbone import benchmark_backbone  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark the SD backbone')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cuda | cpu')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--img-size', type=int, default=None,
                        help='default: 512 (SD-1.5) or 64 (tiny)')
    parser.add_argument('--timesteps', type=int, default=5,
                        help='number T of timesteps, spread over [50, 450]')
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--dtype', default='bf16',
                        choices=['bf16', 'fp16', 'fp32'])
    parser.add_argument('--tiny', action='store_true',
                        help='tiny random SD model (default on the CPU)')
    parser.add_argument('--full', action='store_true',
                        help='force the SD-1.5 architecture on the CPU')
    parser.add_argument('--config',
                        default=osp.join(ROOT, 'configs', 'dldpp_aflw.py'),
                        help='config whose model.backbone gives the '
                        'defaults')
    parser.add_argument('--out-stride', type=int, default=None,
                        help='default: the config\'s')
    parser.add_argument('--sd-input-size', type=int, default=None,
                        help='size SD sees (0: the crop as it is); '
                        'default: the config\'s')
    parser.add_argument('--agg-channels', type=int, default=None,
                        help='default: the config\'s')
    parser.add_argument('--naive-images', type=int, default=None,
                        help='images for the naive extractor '
                        '(default: the batch size)')
    parser.add_argument('--peak-tflops', type=float, default=None,
                        help='accelerator peak TFLOP/s for --dtype '
                        '(default: 790 on CUDA, none on the CPU)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Parse the command line and run
    :func:`mmuld.engine.benchmark.backbone.benchmark_backbone`."""
    return benchmark_backbone(parse_args(argv))


if __name__ == '__main__':
    main()
