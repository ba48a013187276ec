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
import tempfile
import time
from typing import Callable, List, Optional

import torch
from mmengine.config import Config
from torch.utils.flop_counter import FlopCounterMode

from mmuld.models.backbones import (SDComponents, StableDiffusionBackbone,
                                    random_sd15_components)
from mmuld.testing import build_tiny_sd
from mmuld.utils.tensor_memory import TensorMemoryTracker

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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


def sd15_components(device: torch.device) -> SDComponents:
    """SD-1.5 UNet/VAE/scheduler with random weights, built in code."""
    return random_sd15_components(device)


def backbone_settings(args: argparse.Namespace, tiny: bool) -> dict:
    """Backbone arguments: the config's, overridden by the command line."""
    bb = Config.fromfile(args.config).model.backbone
    out = dict(
        out_stride=int(bb.get('out_stride', 8)),
        agg_channels=int(bb.get('agg_channels', 384)),
        sd_input_size=None if tiny else bb.get('sd_input_size'),
        agg_cfg=dict(bb.get('agg_cfg') or {}))
    if args.out_stride is not None:
        out['out_stride'] = args.out_stride
    if args.agg_channels is not None:
        out['agg_channels'] = args.agg_channels
    if args.sd_input_size is not None:
        out['sd_input_size'] = args.sd_input_size or None
    return out


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable, device: torch.device, iters: int) -> float:
    """Seconds per call of ``fn``."""
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    tiny = args.tiny or (device.type == 'cpu' and not args.full)
    img = args.img_size or (64 if tiny else 512)
    t_count = args.timesteps
    timesteps = [50] if t_count == 1 else [
        int(round(50 + 400 * i / (t_count - 1))) for i in range(t_count)
    ]
    if tiny:
        tmp = tempfile.TemporaryDirectory()
        pretrained = build_tiny_sd(tmp.name)
    else:
        pretrained = sd15_components(device)
    settings = backbone_settings(args, tiny)
    model = StableDiffusionBackbone(
        pretrained, timesteps=timesteps, dtype=args.dtype,
        **settings).to(device).eval()
    bsz = args.batch_size
    x = torch.rand(bsz, 3, img, img, device=device) * 2 - 1
    name = (f' ({torch.cuda.get_device_name(device)})'
            if device.type == 'cuda' else '')
    print(f'model: {"tiny" if tiny else "SD-1.5 (random weights)"}, '
          f'device: {device}{name}'
          f', dtype: {args.dtype if device.type == "cuda" else "fp32"}, '
          f'batch: {bsz}, img: {img}, timesteps: {timesteps}, '
          f'layers: {len(model.layers)}, out_stride: {model.out_stride}, '
          f'agg_channels: {model.out_channels}, sd_input_size: '
          f'{model.sd_input_size}, aggregator: '
          f'{"fast" if model.aggregator.fast else "naive"}')

    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        with FlopCounterMode(display=False) as counter:
            model(x)
        flops = counter.get_total_flops() / bsz
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        t_extract = timed(lambda: model.extract_features(x), device,
                          args.iters)
        t_forward = timed(lambda: model(x), device, args.iters)
        if device.type == 'cuda':
            peak_mem = torch.cuda.max_memory_allocated(device) / 2**30
        else:
            # the tensors of one more forward, on top of the weights
            tracker = TensorMemoryTracker()
            for part in (model, model.unet, model.vae):
                tracker.add_existing(part.parameters())
            tracker.add_existing(model.buffers())
            tracker.add_existing([x])
            with tracker:
                model(x)
            peak_mem = tracker.peak / 2**30
        batched = model.extract_features(x)
        t_crop = None
        if model.sd_input_size not in (None, (img, img)):
            resize_to = model.sd_input_size
            model.sd_input_size = None
            t_crop = timed(lambda: model.extract_features(x), device,
                           args.iters)
            model.sd_input_size = resize_to

        n_naive = min(args.naive_images or bsz, bsz)
        xn = x[:n_naive]
        model.extract_features_naive(xn[:1])  # warm-up
        t_naive = timed(lambda: model.extract_features_naive(xn), device, 1)
        naive = model.extract_features_naive(xn)
        model._prepare_sd(device)  # back to the benchmark dtype
    rel = max(((a[:n_naive].float().cpu() - b).norm() /
               b.norm().clamp_min(1e-12)).item()
              for a, b in zip(batched, naive))

    ips_extract = bsz / t_extract
    ips_forward = bsz / t_forward
    ips_naive = n_naive / t_naive
    peak_tflops = args.peak_tflops
    if peak_tflops is None and device.type == 'cuda':
        peak_tflops = 790.
    print(f'FLOPs per image (extract + aggregate): {flops / 1e9:.2f} GFLOP')
    print(f'batched extractor : {ips_extract:8.2f} img/s')
    frac = (f', {100 * ips_forward * flops / (peak_tflops * 1e12):.1f}% of '
            f'{peak_tflops:g} TFLOP/s peak' if peak_tflops else '')
    print(f'forward (+aggreg.): {ips_forward:8.2f} img/s{frac}')
    print(f'naive extractor   : {ips_naive:8.2f} img/s (fp32, {n_naive} img)')
    print(f'speed-up batched / naive: {ips_extract / ips_naive:.1f}x, '
          f'max relative feature difference: {rel:.2e}')
    if t_crop is not None:
        print(f'cost of sd_input_size {model.sd_input_size}: extractor '
              f'{ips_extract:.2f} img/s against {bsz / t_crop:.2f} img/s '
              f'with SD at the {img} px crop ({t_extract / t_crop:.2f}x '
              'the time)')
    print(f'peak memory: {peak_mem:.2f} GiB ('
          + ('CUDA allocated' if device.type == 'cuda' else
             'tensors of a forward, TensorMemoryTracker') + ')')


if __name__ == '__main__':
    main()
