# Copyright (c) mmuld contributors. All rights reserved.
"""Benchmark the training iterations of a D-ULD / D-ULD++ config.

Builds the model of CONFIG with either the SD-1.5 architecture with random
weights built in code (``--sd15-random``; random weights take the time of
trained ones, nothing is downloaded) or the tiny test SD model with the
narrow heads of the demo config (``--tiny``, the default on the CPU), and
runs ``--iters`` timed training iterations (after ``--warmup`` untimed ones)
of every stage of the model's stage table (``model.stages``; stage switch,
freezing and lr as in a training run, :func:`mmuld.engine.enter_stage`).
The stages that train on pseudo-labels get random valid ones of the right
shape and kind (a :class:`PseudoLabelBank` handed to
``model.set_pseudo_labels``). Inputs are synthetic random images (the data
pipeline is not timed).

Per stage it prints seconds per iteration, images per second (images of
the batch; bootstrapping feeds twice as many through the network), peak
memory (CUDA ``max_memory_allocated``; on the CPU the tensor memory of one
more iteration, counted by :class:`TensorMemoryTracker`) and
the share of the iteration spent in the frozen SD extractor, the
aggregator (forward + backward), the heads and losses (forward +
backward), the optimizer step and the rest. The split synchronises the
device at each boundary (``torch.cuda.synchronize`` + ``perf_counter``;
the backward boundary is a gradient hook on the aggregator output). It
ends with the projected wall time of the config's full schedule.

``--device meta`` counts instead of timing, on any machine: the model
(with ``--sd15-random``, the SD-1.5 architecture) is built on PyTorch's
``meta`` device, where operators only compute shapes, and one iteration
of every stage runs under ``FlopCounterMode`` (which counts matrix
products, convolutions and attention; element-wise work such as
GroupNorm, activations and the optimizer step is memory-bound and not
counted, and the step is skipped). It prints the FLOPs of an iteration
split into the VAE encoder, the UNet, the aggregator (forward and
backward) and the rest (heads and losses), the time an
iteration would take at ``--peak-tflops`` (default 989: an H100 SXM's
dense bf16 peak) and the share of that peak the schedule needs to average
``--target`` seconds per iteration. Boolean selections count every element
as selected (an upper bound; the masks of this model are nearly all true).
This answers, without a GPU, whether a time target is reachable at all.
``--flops`` adds the same split to the timed table on a real device.

A config with any other backbone (e.g. ``configs/dldpp_face_world_cpu.py``:
a ResNet through ``FeatureMapAdapter``, trained from scratch) is built as
it is; its whole backbone (forward + backward) is timed in the
"aggregator" column and "sd" is 0. ``--naive`` then only selects the
straightforward bootstrapping loss; the SD options are refused.

Examples::

    python tools/analysis/benchmark_training.py configs/dldpp_aflw.py \
        --tiny --iters 2
    python tools/analysis/benchmark_training.py configs/dldpp_aflw.py \
        --sd15-random --device cuda --amp --iters 5
    # the straightforward computations, for comparison
    python tools/analysis/benchmark_training.py configs/dldpp_aflw.py \
        --sd15-random --device cuda --naive
    python tools/analysis/benchmark_training.py \
        configs/dldpp_face_world_cpu.py --img-size 128 --iters 5
    # FLOPs of the real model, and the time floor on an H100, on a CPU
    python tools/analysis/benchmark_training.py configs/dldpp_aflw.py \
        --sd15-random --device meta
"""
import argparse
import contextlib
import tempfile
import time
from collections import defaultdict
from typing import Dict, Iterator, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmpose.structures import PoseDataSample

from mmuld.clustering import PseudoLabelBank
from mmuld.engine import enter_stage, fixed_parameters, train_mode
from mmuld.models.backbones import random_sd15_components
from mmuld.models.pose_estimators.stages import Stage, schedule_of
from mmuld.registry import MODELS
from mmuld.testing import build_tiny_sd
from mmuld.utils import register_all_modules
from mmuld.utils.tensor_memory import (TensorMemoryTracker,
                                       optimizer_state_tensors)

PARTS = ('sd', 'aggregator', 'heads_losses', 'optimizer', 'other')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark the training stages of a config')
    parser.add_argument('config', help='config file (D-ULD / D-ULD++)')
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument('--sd15-random', action='store_true',
                      help='SD-1.5 architecture with random weights')
    kind.add_argument('--tiny', action='store_true',
                      help='tiny test SD model (default on the CPU)')
    parser.add_argument('--device',
                        default='cuda' if torch.cuda.is_available() else
                        'cpu')
    parser.add_argument('--iters', type=int, default=5,
                        help='timed iterations per stage')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations per stage')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='default: the config\'s train batch size '
                        '(2 with --tiny)')
    parser.add_argument('--img-size', type=int, default=None,
                        help='default: the config\'s input_size (64 with '
                        '--tiny)')
    parser.add_argument('--stages', nargs='+', default=None,
                        help='only these stages (names)')
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast of the trainable parts '
                        '(AmpOptimWrapper, CUDA only)')
    parser.add_argument('--naive', action='store_true',
                        help='the straightforward computations: aggregator '
                        '(resize, then bottleneck) and bootstrapping loss '
                        '(full similarity matrices)')
    cp = parser.add_mutually_exclusive_group()
    cp.add_argument('--with-cp', action='store_true',
                    help='activation checkpointing in the aggregator')
    cp.add_argument('--no-cp', action='store_true',
                    help='no activation checkpointing (default: the '
                    'config\'s agg_cfg)')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the aggregator\'s bottlenecks '
                        '(agg_cfg compile=True; the warm-up iteration '
                        'compiles)')
    parser.add_argument('--sd-input-size', type=int, default=None,
                        help='override the backbone\'s sd_input_size '
                        '(0: none)')
    parser.add_argument('--flops', action='store_true',
                        help='also count FLOPs of one iteration per stage')
    parser.add_argument('--peak-tflops', type=float, default=989.,
                        help='accelerator peak (TFLOP/s) for the time floor '
                        'of --device meta (default: H100 SXM dense bf16)')
    parser.add_argument('--target', type=float, default=0.1,
                        help='s/iter averaged over the schedule whose '
                        'needed share of the peak --device meta prints')
    parser.add_argument('--profile', action='store_true',
                        help='also print the top operators of one '
                        'iteration per stage (torch.profiler)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


class PartTimer:
    """Accumulates wall time per part, synchronising the device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.totals: Dict[str, float] = defaultdict(float)
        self.marks: Dict[str, float] = {}

    def now(self) -> float:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def add(self, part: str, seconds: float) -> None:
        self.totals[part] += seconds


def _timed_forward(forward, timer: PartTimer):
    """``forward`` timed as the aggregator's part; marks
    ``timer.marks['agg_grad']`` when the gradient reaches its output (the
    first tensor of a tuple) in the backward pass."""

    def timed(*args, **kwargs):
        t0 = timer.now()
        out = forward(*args, **kwargs)
        timer.add('agg_fwd', timer.now() - t0)
        feat = out[0] if isinstance(out, (tuple, list)) else out
        if feat.requires_grad:

            def hook(grad):
                timer.marks['agg_grad'] = timer.now()
                return grad

            feat.register_hook(hook)
        return out

    return timed


def instrument(model, timer: PartTimer) -> None:
    """Wrap the SD extractor and the aggregator of ``model`` with timers
    (a trainable backbone other than SD is timed whole, as the
    aggregator).

    Sets ``timer.marks['agg_grad']`` when the gradient reaches the
    aggregator output in the backward pass.
    """
    backbone = model.backbone
    if not is_sd(backbone):
        backbone.forward = _timed_forward(backbone.forward, timer)
        return
    extract = backbone.extract_features

    def timed_extract(x):
        t0 = timer.now()
        out = extract(x)
        timer.add('sd', timer.now() - t0)
        return out

    backbone.extract_features = timed_extract
    backbone.aggregator.forward = _timed_forward(backbone.aggregator.forward,
                                                 timer)


def is_sd(backbone) -> bool:
    """Whether ``backbone`` is the Stable Diffusion backbone (frozen SD
    extractor + trainable aggregator) rather than any trainable one."""
    return hasattr(backbone, 'extract_features') and hasattr(
        backbone, 'aggregator')


def random_bank(model, num_images: int, img_size: int, num_pose: int,
                two_stage: bool, generator: torch.Generator):
    """Random valid pseudo-labels of ``num_images`` images."""
    k = model.num_landmarks
    kpts = torch.rand(num_images, k, 2, generator=generator) * (
        img_size - 1)
    valid = torch.ones(num_images, k, dtype=torch.bool)
    valid[:, -1] = torch.rand(num_images, generator=generator) > 0.3
    pose = torch.randint(0, num_pose, (num_images, ), generator=generator)
    if two_stage:
        labels = pose[:, None] * k + torch.arange(k)[None]
    else:
        labels = torch.arange(k).expand(num_images, k).clone()
        pose = torch.zeros_like(pose)
    labels = torch.where(valid, labels, torch.full_like(labels, -1))
    dz = getattr(getattr(model, 'pose_vae', None), 'latent_dim', 8)
    return PseudoLabelBank(
        keypoints=kpts,
        valid=valid,
        labels=labels,
        pose_labels=pose,
        codes=torch.randn(num_images, int(dz), generator=generator))


def build(args, device: torch.device):
    """Config, model, optimizer wrapper, batch size and input size."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    bb = cfg.model.backbone
    sd = bb.get('type') == 'StableDiffusionBackbone'
    if not sd and (args.tiny or args.sd15_random or args.with_cp
                   or args.no_cp or args.compile
                   or args.sd_input_size is not None):
        raise ValueError(
            f'{args.config}: --tiny, --sd15-random, --with-cp, --no-cp, '
            '--compile and --sd-input-size apply to the Stable Diffusion '
            'backbone; this '
            f'config uses {bb.get("type")}')
    tiny = sd and (args.tiny or (device.type in ('cpu', 'meta')
                                 and not args.sd15_random))
    tmp = None
    if args.naive:
        cfg.model.loss_bootstrap = dict(
            cfg.model.get('loss_bootstrap', dict(type='BootstrapLoss')),
            memory_efficient=False)
    if sd:
        if tiny:
            tmp = tempfile.TemporaryDirectory()
            bb.pretrained = build_tiny_sd(tmp.name)
            # the small widths of the tiny demo config
            bb.agg_channels = 32
            cfg.model.detector_head.update(in_channels=32, feat_channels=32)
            cfg.model.descriptor_head.update(
                in_channels=32, feat_channels=32, desc_dim=32)
            if cfg.model.get('pose_vae') is not None:
                cfg.model.pose_vae.update(base_channels=8, num_stages=2)
        else:
            bb.pretrained = random_sd15_components(device)
        agg_cfg = dict(bb.get('agg_cfg') or {})
        if args.naive:
            agg_cfg['fast'] = False
        if args.with_cp or args.no_cp:
            agg_cfg['with_cp'] = bool(args.with_cp)
        if args.compile:
            agg_cfg['compile'] = True
        bb.agg_cfg = agg_cfg
        if args.sd_input_size is not None:
            bb.sd_input_size = args.sd_input_size or None
        if tiny and bb.get('sd_input_size') is not None:
            bb.sd_input_size = None  # the tiny model is not SD-1.5
    stride = int(bb.get('out_stride', 8))
    if args.img_size:
        img = args.img_size
    elif tiny:
        img = 64
    else:
        img = int(cfg.get('input_size', (256, 256))[0])
    if cfg.model.get('pose_vae') is not None:
        cfg.model.pose_vae.heatmap_size = (img // stride, img // stride)
    bsz = args.batch_size or (2 if tiny else int(
        cfg.train_dataloader.batch_size))
    model = MODELS.build(cfg.model).to(device)
    model.train()
    ow_cfg = cfg.optim_wrapper.copy()
    if args.amp:
        if device.type != 'cuda':
            raise ValueError('--amp needs a CUDA device')
        ow_cfg.type = 'AmpOptimWrapper'
        ow_cfg.dtype = 'bfloat16'
    optim_wrapper = build_optim_wrapper(model, ow_cfg)
    return cfg, model, optim_wrapper, bsz, img, tiny, tmp


FLOP_PARTS = ('vae', 'unet', 'aggregator', 'rest')


def flops_by_module(counter) -> Dict[str, float]:
    """Total FLOPs per module name of a ``FlopCounterMode`` (which names a
    module by the class of the first module it saw, its root, and the
    attribute path below it; ``'Global'`` is everything)."""
    return {
        name: float(sum(by_op.values()))
        for name, by_op in counter.get_flop_counts().items()
    }


def flop_split(counter, model,
               sd_counter=None) -> Dict[str, float]:
    """FLOPs of an iteration counted by ``counter`` (a
    ``FlopCounterMode`` opened before the model's first call), by part.

    Args:
        counter (FlopCounterMode): The finished counter.
        model (nn.Module): The benchmarked model.
        sd_counter (FlopCounterMode, optional): A counter of the SD
            extraction alone (it ends the UNet call with an exception, so
            the outer counter would go on crediting later modules to the
            UNet).

    Returns:
        dict: ``total``, ``vae`` (encoder), ``unet``, ``aggregator`` (or the
        whole trainable backbone of a non-SD config; forward and backward)
        and ``rest`` (heads and losses).
    """
    counts = flops_by_module(counter)
    bb = model.backbone
    out = dict(total=counts.get('Global', 0.))
    if is_sd(bb):
        sd = flops_by_module(sd_counter)
        out['vae'] = sd.get(type(bb.vae.encoder).__name__, 0.)
        out['unet'] = sd.get('Global', 0.) - out['vae']
        out['aggregator'] = counts.get(f'{type(bb).__name__}.aggregator', 0.)
    else:
        out['vae'] = out['unet'] = 0.
        out['aggregator'] = counts.get(type(bb).__name__, 0.)
    out['rest'] = max(
        out['total'] - out['vae'] - out['unet'] - out['aggregator'], 0.)
    return out


def format_flops(flops: float) -> str:
    """``flops`` in TFLOP, or GFLOP below 0.1 TFLOP."""
    if flops >= 1e11:
        return f'{flops / 1e12:.2f} TFLOP'
    return f'{flops / 1e9:.2f} GFLOP'


def count_iteration(model, optim_wrapper, inputs, samples,
                    timer: 'PartTimer') -> Dict[str, float]:
    """One iteration under ``FlopCounterMode``; its FLOPs by part."""
    from torch.utils.flop_counter import FlopCounterMode
    bb = model.backbone
    sd_counter = FlopCounterMode(display=False)
    if is_sd(bb):
        extract = bb.extract_features

        def counted_extract(x):
            with sd_counter:
                return extract(x)

        bb.extract_features = counted_extract
    # the CPU's fused attention kernel has no FLOP formula: count the
    # attention of the CPU through the math backend (as on meta; CUDA's
    # kernels have formulas)
    attention = contextlib.nullcontext()
    if timer.device.type == 'cpu':
        from torch.nn.attention import SDPBackend, sdpa_kernel
        attention = sdpa_kernel(SDPBackend.MATH)
    try:
        with attention, FlopCounterMode(display=False) as counter:
            run_iteration(model, optim_wrapper, inputs, samples, timer)
    finally:
        if is_sd(bb):
            bb.extract_features = extract
    return flop_split(counter, model, sd_counter)


def run_iteration(model, optim_wrapper, inputs, samples,
                  timer: PartTimer) -> None:
    timer.marks.clear()
    t0 = timer.now()
    with optim_wrapper.optim_context(model):
        losses = model.loss(inputs, samples)
    loss, _ = model.parse_losses(losses)
    t1 = timer.now()
    optim_wrapper.backward(loss)
    t2 = timer.now()
    if timer.device.type != 'meta':
        # on meta, the step (element-wise, no counted FLOPs) is skipped:
        # gradient clipping reads the norm back
        optim_wrapper.step()
    optim_wrapper.zero_grad()
    t3 = timer.now()
    agg_grad = timer.marks.get('agg_grad', t2)
    timer.add('forward', t1 - t0)
    timer.add('backward_heads', agg_grad - t1)
    timer.add('agg_bwd', t2 - agg_grad)
    timer.add('optimizer', t3 - t2)
    timer.add('total', t3 - t0)
    timer.add('iterations', 1)


def profile_iteration(model, optim_wrapper, inputs, samples,
                      timer: PartTimer, rows: int = 10) -> None:
    """Print the operators that take most device (or CPU) time in one
    iteration."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU]
    cuda = timer.device.type == 'cuda'
    if cuda:
        acts.append(ProfilerActivity.CUDA)
    with profile(activities=acts) as prof:
        run_iteration(model, optim_wrapper, inputs, samples, timer)
        timer.now()

    def self_time(evt) -> float:
        if not cuda:
            return evt.self_cpu_time_total
        return getattr(evt, 'self_device_time_total',
                       getattr(evt, 'self_cuda_time_total', 0.))

    events = sorted(prof.key_averages(), key=self_time, reverse=True)
    total = sum(self_time(e) for e in events) or 1.
    for evt in events[:rows]:
        ms = self_time(evt) / 1e3
        share = 100 * self_time(evt) / total
        print(f'    {ms:8.2f} ms {share:5.1f}%  {evt.key[:70]}')


def tensor_peak(model, optim_wrapper, inputs, samples,
                timer: PartTimer) -> int:
    """Peak tensor memory (bytes) of one iteration on a device without
    ``max_memory_allocated`` (the CPU): the weights (the frozen SD ones
    too), buffers, optimizer states and inputs, plus every tensor created
    while it runs (:class:`TensorMemoryTracker`)."""
    tracker = TensorMemoryTracker()
    tracker.add_existing(model.parameters())
    tracker.add_existing(model.buffers())
    bb = model.backbone
    if is_sd(bb):
        tracker.add_existing(bb.unet.parameters())
        tracker.add_existing(bb.vae.parameters())
    tracker.add_existing(optimizer_state_tensors(optim_wrapper.optimizer))
    tracker.add_existing([inputs])
    with tracker:
        run_iteration(model, optim_wrapper, inputs, samples, timer)
    return tracker.peak


def summarise(totals: Dict[str, float]) -> Dict[str, float]:
    """Seconds per iteration of each part, over the iterations the
    totals hold."""
    per = {k: v / max(totals.get('iterations', 0), 1)
           for k, v in totals.items()}
    out = dict(
        sd=per.get('sd', 0.),
        aggregator=per.get('agg_fwd', 0.) + per.get('agg_bwd', 0.),
        heads_losses=per.get('forward', 0.) - per.get('sd', 0.) -
        per.get('agg_fwd', 0.) + per.get('backward_heads', 0.),
        optimizer=per.get('optimizer', 0.),
        total=per.get('total', 0.))
    out['other'] = max(
        out['total'] - sum(out[p] for p in PARTS if p != 'other'), 0.)
    return out


def enter_stages(args, model, optim_wrapper, stages: List[Stage], bsz: int,
                 img: int, num_pose: int,
                 gen: torch.Generator) -> Iterator[Stage]:
    """Yield the stages selected by ``--stages``, each after switching the
    model to it as a training run does (:func:`enter_stage`,
    :func:`train_mode`) and, for the self-training stages, handing it random
    pseudo-labels of the batch."""
    fixed = fixed_parameters(model)
    for stage in stages:
        if args.stages and stage.name not in args.stages:
            continue
        enter_stage(model, stage, optim_wrapper, fixed)
        train_mode(model)
        if stage.pseudo_labels is not None:
            model.set_pseudo_labels(
                random_bank(model, bsz, img, num_pose, stage.two_stage, gen))
        yield stage


def count_stages(args, model, optim_wrapper, stages: List[Stage], inputs,
                 samples, timer: PartTimer, bsz: int, img: int,
                 num_pose: int,
                 gen: torch.Generator) -> Dict[str, Dict[str, float]]:
    """``--device meta``: FLOPs of one iteration per stage and the time
    floor at ``args.peak_tflops`` (see the module docstring).

    Returns:
        dict: Stage name -> :func:`flop_split` of one iteration.
    """
    import torch.fx.experimental._config as fx_config

    # nonzero on meta: every element selected (an upper bound)
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
        return _count_stages(args, model, optim_wrapper, stages, inputs,
                             samples, timer, bsz, img, num_pose, gen)


def _count_stages(args, model, optim_wrapper, stages: List[Stage], inputs,
                  samples, timer: PartTimer, bsz: int, img: int,
                  num_pose: int,
                  gen: torch.Generator) -> Dict[str, Dict[str, float]]:
    peak = args.peak_tflops * 1e12
    print(f'FLOPs of one iteration (meta device: counted, not run); time '
          f'floor at {args.peak_tflops:g} TFLOP/s')
    print(f'{"stage":10s} {"FLOP/iter":>13s} '
          + ' '.join(f'{p:>11s}' for p in FLOP_PARTS)
          + f' {"s/iter at peak":>15s}')
    total_flops = 0.
    total_iters = 0
    results = {}
    for stage in enter_stages(args, model, optim_wrapper, stages, bsz, img,
                              num_pose, gen):
        flops = count_iteration(model, optim_wrapper, inputs, samples, timer)
        t = flops['total']
        shares = ' '.join(f'{100 * flops[p] / max(t, 1.):10.1f}%'
                          for p in FLOP_PARTS)
        print(f'{stage.name:10s} {format_flops(t):>13s} {shares} '
              f'{t / peak:15.4f}')
        total_flops += stage.iters * t
        total_iters += stage.iters
        results[stage.name] = flops
    if total_iters:
        avg = total_flops / total_iters
        print(f'schedule: {total_iters} iterations, average '
              f'{format_flops(avg)}/iter; at the peak {avg / peak:.3f} '
              f's/iter, {total_flops / peak / 3600:.2f} h; averaging '
              f'{args.target:g} s/iter needs '
              f'{100 * avg / (args.target * peak):.0f}% of the peak '
              f'(stages run: {", ".join(results)})')
    return results


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    """Run the benchmark.

    Returns:
        dict: Stage name -> figures: ``s_iter``, ``peak`` (GB) and, with
        ``--flops``, the :func:`flop_split` entries; with ``--device meta``
        only the :func:`flop_split` entries.
    """
    args = parse_args(argv)
    if args.iters < 1:
        raise ValueError(f'--iters must be >= 1, got {args.iters}')
    register_all_modules(init_default_scope=True)
    device = torch.device(args.device)
    cfg, model, optim_wrapper, bsz, img, tiny, _tmp = build(args, device)
    loop = cfg.get('train_cfg', None) or {}
    if loop.get('type') not in ('ULDTrainLoop', 'mmuld.ULDTrainLoop'):
        raise ValueError(f'{args.config} does not train with ULDTrainLoop '
                         '(train_cfg.type): nothing to benchmark')
    stages = list(schedule_of(model))
    if args.stages:
        unknown = set(args.stages) - {s.name for s in stages}
        if unknown:
            raise ValueError(f'unknown stages {sorted(unknown)}; the config '
                             f'has {[s.name for s in stages]}')
    clustering = loop.get('clustering', None) or {}
    num_pose = int(clustering.get('num_pose_clusters', 10) or 1)
    bb = model.backbone
    name = (f' ({torch.cuda.get_device_name(device)})'
            if device.type == 'cuda' else '')
    loss_mode = 'memory-light' if getattr(
        model.loss_bootstrap, 'memory_efficient', False) else 'naive'
    print(f'config: {args.config}')
    if is_sd(bb):
        print(f'model: {"tiny" if tiny else "SD-1.5 (random weights)"}, '
              f'device: {device}{name}, batch: {bsz}, img: {img}, '
              f'sd_input_size: {bb.sd_input_size}, '
              f'out_stride: {bb.out_stride}, '
              f'timesteps: {len(bb.timesteps)}, layers: {len(bb.layers)}, '
              f'aggregator: {"fast" if bb.aggregator.fast else "naive"}'
              f'{" + checkpointing" if bb.aggregator.with_cp else ""}'
              f'{" + compiled" if bb.aggregator.compile else ""}, '
              f'bootstrap loss: {loss_mode}, '
              f'amp: {"bf16" if args.amp else "off"}')
    else:
        print(f'model: {type(bb).__name__} (trainable; timed in the '
              f'"aggregator" column, "sd" is 0), device: {device}{name}, '
              f'batch: {bsz}, img: {img}, out_stride: {bb.out_stride}, '
              f'bootstrap loss: {loss_mode}, '
              f'amp: {"bf16" if args.amp else "off"}')
    gen = torch.Generator().manual_seed(0)
    inputs = (torch.rand(bsz, 3, img, img, generator=gen) * 2 - 1).to(device)
    samples = []
    for i in range(bsz):
        ds = PoseDataSample()
        ds.set_metainfo(dict(sample_idx=i, input_size=(img, img)))
        samples.append(ds)
    timer = PartTimer(device)
    if device.type == 'meta':
        return count_stages(args, model, optim_wrapper, stages, inputs,
                            samples, timer, bsz, img, num_pose, gen)
    instrument(model, timer)
    header = (f'{"stage":10s} {"s/iter":>8s} {"img/s":>8s} {"peak":>10s} '
              + ' '.join(f'{p:>12s}' for p in PARTS))
    print(header)
    total_time = 0.
    total_iters = 0
    rows = []
    results = {}
    for stage in enter_stages(args, model, optim_wrapper, stages, bsz, img,
                              num_pose, gen):
        for _ in range(args.warmup):
            run_iteration(model, optim_wrapper, inputs, samples, timer)
        flops = None
        if args.flops:
            flops = count_iteration(model, optim_wrapper, inputs, samples,
                                    timer)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        timer.totals.clear()
        for _ in range(args.iters):
            run_iteration(model, optim_wrapper, inputs, samples, timer)
        # before the untimed, tracked iteration below adds to the totals
        summ = summarise(timer.totals)
        if device.type == 'cuda':
            peak = torch.cuda.max_memory_allocated(device) / 1e9
            peak_s = f'{peak:7.2f} GB'
        else:
            peak = tensor_peak(model, optim_wrapper, inputs, samples,
                               timer) / 1e9
            peak_s = (f'{peak:6.2f} GB*'
                      if peak >= 1 else f'{peak * 1e3:6.1f} MB*')
        t = summ['total']
        shares = ' '.join(
            f'{100 * summ[p] / max(t, 1e-12):11.1f}%' for p in PARTS)
        print(f'{stage.name:10s} {t:8.3f} {bsz / t:8.2f} {peak_s:>10s} '
              f'{shares}' + (f'  {format_flops(flops["total"])}/iter ('
                             + ', '.join(f'{p} {format_flops(flops[p])}'
                                         for p in FLOP_PARTS) + ')'
                             if flops is not None else ''))
        if args.profile:
            profile_iteration(model, optim_wrapper, inputs, samples, timer)
        iters = stage.iters
        total_time += iters * t
        total_iters += iters
        rows.append((stage.name, t, peak))
        results[stage.name] = dict(s_iter=t, peak=peak, **(flops or {}))
    if device.type != 'cuda':
        print('* peak on the CPU: tensor memory of one more iteration '
              '(TensorMemoryTracker: weights, optimizer states and every '
              'tensor alive; no allocator overhead)')
    if total_iters:
        print(f'schedule: {total_iters} iterations, average '
              f'{total_time / total_iters:.3f} s/iter, projected wall time '
              f'{total_time / 3600:.2f} h (stages run: '
              f'{", ".join(r[0] for r in rows)})')
    return results


if __name__ == '__main__':
    main()
