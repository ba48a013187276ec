# Copyright (c) mmuld contributors. All rights reserved.
"""The Stable Diffusion backbone benchmark
(``tools/analysis/benchmark_backbone.py``).

:func:`benchmark_backbone` builds the SD-1.5 architecture with random
weights (or the tiny test model), times the batched extractor and the
forward, counts FLOPs and peak memory, and checks the batched extractor
against the naive one; it prints one line per figure and returns them.
"""
import tempfile
import time
from typing import Callable, Dict, Optional

import torch
from mmengine.config import Config
from torch.utils.flop_counter import FlopCounterMode

from mmuld.models.backbones import (StableDiffusionBackbone,
                                    random_sd15_components)
from mmuld.testing import build_tiny_sd
from mmuld.utils.tensor_memory import TensorMemoryTracker


def seconds_per_call(fn: Callable, device: torch.device, iters: int) -> float:
    """Seconds per call of ``fn``, the device synchronised around the
    calls.

    Args:
        fn (Callable): The call to time.
        device (torch.device): Its device.
        iters (int): Calls averaged.

    Returns:
        float: Seconds per call.
    """
    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    sync()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - start) / iters


def backbone_settings(config: str, tiny: bool,
                      out_stride: Optional[int] = None,
                      agg_channels: Optional[int] = None,
                      sd_input_size: Optional[int] = None) -> dict:
    """Backbone arguments: ``config``'s ``model.backbone``, overridden by
    the given values (``sd_input_size=0``: the crop as it is; ``tiny``
    ignores the config's ``sd_input_size``, set for SD-1.5).

    Args:
        config (str): Config file.
        tiny (bool): The tiny test model is benchmarked.
        out_stride (int, optional): Override.
        agg_channels (int, optional): Override.
        sd_input_size (int, optional): Override.

    Returns:
        dict: ``out_stride``, ``agg_channels``, ``sd_input_size``,
        ``agg_cfg``.
    """
    bb = Config.fromfile(config).model.backbone
    out = dict(
        out_stride=int(bb.get('out_stride', 8)),
        agg_channels=int(bb.get('agg_channels', 384)),
        sd_input_size=None if tiny else bb.get('sd_input_size'),
        agg_cfg=dict(bb.get('agg_cfg') or {}))
    if out_stride is not None:
        out['out_stride'] = out_stride
    if agg_channels is not None:
        out['agg_channels'] = agg_channels
    if sd_input_size is not None:
        out['sd_input_size'] = sd_input_size or None
    return out


def benchmark_backbone(args) -> Dict[str, float]:
    """Run the benchmark with the options of the tool's command line.

    Args:
        args (argparse.Namespace): ``device``, ``batch_size``, ``img_size``,
            ``timesteps``, ``iters``, ``warmup``, ``dtype``, ``tiny``,
            ``full``, ``config``, ``out_stride``, ``sd_input_size``,
            ``agg_channels``, ``naive_images``, ``peak_tflops``.

    Returns:
        dict: ``gflops_per_image``, ``extract_img_s``, ``forward_img_s``,
        ``naive_img_s``, ``max_rel_diff`` and ``peak_mem_gib``.
    """
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
        pretrained = random_sd15_components(device)
    settings = backbone_settings(args.config, tiny, args.out_stride,
                                 args.agg_channels, args.sd_input_size)
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
        t_extract = seconds_per_call(lambda: model.extract_features(x),
                                     device, args.iters)
        t_forward = seconds_per_call(lambda: model(x), device, args.iters)
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
            t_crop = seconds_per_call(lambda: model.extract_features(x),
                                      device, args.iters)
            model.sd_input_size = resize_to

        n_naive = min(args.naive_images or bsz, bsz)
        xn = x[:n_naive]
        model.extract_features_naive(xn[:1])  # warm-up
        t_naive = seconds_per_call(lambda: model.extract_features_naive(xn),
                                   device, 1)
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

    return dict(gflops_per_image=flops / 1e9, extract_img_s=ips_extract,
                forward_img_s=ips_forward, naive_img_s=ips_naive,
                max_rel_diff=rel, peak_mem_gib=peak_mem)
