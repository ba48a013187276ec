# Copyright (c) mmuld contributors. All rights reserved.
"""The training benchmark: every stage of a config, timed or counted.

:func:`benchmark_training` builds the model of a D-ULD / D-ULD++ config
(:func:`build`), enters every stage of its stage table as a training run
does (:func:`enter_stages`: :func:`~mmuld.engine.enter_stage`, random
pseudo-labels from :func:`random_bank`) and times ``iters`` iterations of
each on synthetic inputs, or, on the ``meta`` device, counts the FLOPs of
one (:func:`count_stages`). ``tools/analysis/benchmark_training.py`` is
its command line; its docstring describes the printed table.
"""
import tempfile
from dataclasses import dataclass
from typing import (Dict, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple)

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpose.structures import PoseDataSample
from torch import Tensor, nn

from mmuld.engine.stage_entry import enter_stage, fixed_parameters, train_mode
from mmuld.models.backbones import random_sd15_components
from mmuld.models.pose_estimators.stages import Stage, schedule_of
from mmuld.registry import MODELS
from mmuld.testing import build_tiny_sd
from mmuld.utils import register_all_modules
from .bank import random_bank
from .flops import FLOP_PARTS, count_iteration, format_flops
from .timing import (PARTS, PartTimer, instrument, is_sd, profile_iteration,
                     run_iteration, summarise, tensor_peak)


@dataclass
class BenchmarkOptions:
    """What :func:`benchmark_training` runs (the options of
    ``tools/analysis/benchmark_training.py``, same names and defaults).

    Attributes:
        config (str): D-ULD / D-ULD++ config file.
        sd15_random (bool): SD-1.5 architecture with random weights.
        tiny (bool): The tiny test SD model (the default on the CPU and on
            ``meta`` unless ``sd15_random``).
        device (str, optional): Device; None: ``'cuda'`` when available,
            else ``'cpu'``. ``'meta'`` counts FLOPs instead of timing.
        iters (int): Timed iterations per stage (>= 1).
        warmup (int): Untimed iterations per stage.
        batch_size (int, optional): Default: the config's train batch size
            (2 with the tiny model).
        img_size (int, optional): Default: the config's ``input_size`` (64
            with the tiny model).
        stages (list[str], optional): Only these stages (names).
        amp (bool): bf16 autocast of the trainable parts
            (``AmpOptimWrapper``, CUDA only).
        naive (bool): The straightforward aggregator and bootstrapping
            loss.
        with_cp (bool): Activation checkpointing in the aggregator.
        no_cp (bool): No activation checkpointing (neither: the config's).
        compile (bool): ``torch.compile`` the aggregator's bottlenecks.
        sd_input_size (int, optional): Override the backbone's
            ``sd_input_size`` (0: none).
        flops (bool): Also count the FLOPs of one iteration per stage.
        peak_tflops (float): Accelerator peak (TFLOP/s) for the time floor
            of the ``meta`` device.
        target (float): s/iter averaged over the schedule whose needed
            share of the peak the ``meta`` device prints.
        profile (bool): Also print the top operators of one iteration per
            stage.
        cfg_options (dict, optional): Overrides of config settings.
    """

    config: str
    sd15_random: bool = False
    tiny: bool = False
    device: Optional[str] = None
    iters: int = 5
    warmup: int = 1
    batch_size: Optional[int] = None
    img_size: Optional[int] = None
    stages: Optional[List[str]] = None
    amp: bool = False
    naive: bool = False
    with_cp: bool = False
    no_cp: bool = False
    compile: bool = False
    sd_input_size: Optional[int] = None
    flops: bool = False
    peak_tflops: float = 989.
    target: float = 0.1
    profile: bool = False
    cfg_options: Optional[dict] = None


class BenchmarkSetup(NamedTuple):
    """What :func:`build` made.

    Attributes:
        cfg (Config): The config (with the benchmark's changes).
        model (nn.Module): The model, on the device, in training mode.
        optim_wrapper (OptimWrapper): Its optimizer wrapper.
        batch_size (int): Images per batch.
        img_size (int): Input side in pixels.
        tiny (bool): Whether the tiny SD model is used.
        tmp (TemporaryDirectory, optional): The folder of the tiny SD model
            (keep it alive while the model runs).
    """

    cfg: Config
    model: nn.Module
    optim_wrapper: object
    batch_size: int
    img_size: int
    tiny: bool
    tmp: Optional[tempfile.TemporaryDirectory]


def build(opts: BenchmarkOptions, device: torch.device) -> BenchmarkSetup:
    """The config, model and optimizer wrapper of a benchmark.

    Args:
        opts (BenchmarkOptions): The options (config, SD model, widths,
            checkpointing, batch and input size, amp).
        device (torch.device): Device to build on.

    Returns:
        BenchmarkSetup: Config, model, optimizer wrapper, batch size,
        input size, whether the model is tiny, and the tiny model's
        folder.

    Raises:
        ValueError: An SD-only option with another backbone, or ``amp``
            off CUDA.
    """
    cfg = Config.fromfile(opts.config)
    if opts.cfg_options:
        cfg.merge_from_dict(opts.cfg_options)
    bb = cfg.model.backbone
    sd = bb.get('type') == 'StableDiffusionBackbone'
    if not sd and (opts.tiny or opts.sd15_random or opts.with_cp
                   or opts.no_cp or opts.compile
                   or opts.sd_input_size is not None):
        raise ValueError(
            f'{opts.config}: --tiny, --sd15-random, --with-cp, --no-cp, '
            '--compile and --sd-input-size apply to the Stable Diffusion '
            'backbone; this '
            f'config uses {bb.get("type")}')
    tiny = sd and (opts.tiny or (device.type in ('cpu', 'meta')
                                 and not opts.sd15_random))
    tmp = None
    if opts.naive:
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
        if opts.naive:
            agg_cfg['fast'] = False
        if opts.with_cp or opts.no_cp:
            agg_cfg['with_cp'] = bool(opts.with_cp)
        if opts.compile:
            agg_cfg['compile'] = True
        bb.agg_cfg = agg_cfg
        if opts.sd_input_size is not None:
            bb.sd_input_size = opts.sd_input_size or None
        if tiny and bb.get('sd_input_size') is not None:
            bb.sd_input_size = None  # the tiny model is not SD-1.5
    stride = int(bb.get('out_stride', 8))
    if opts.img_size:
        img = opts.img_size
    elif tiny:
        img = 64
    else:
        img = int(cfg.get('input_size', (256, 256))[0])
    if cfg.model.get('pose_vae') is not None:
        cfg.model.pose_vae.heatmap_size = (img // stride, img // stride)
    bsz = opts.batch_size or (2 if tiny else int(
        cfg.train_dataloader.batch_size))
    model = MODELS.build(cfg.model).to(device)
    model.train()
    ow_cfg = cfg.optim_wrapper.copy()
    if opts.amp:
        if device.type != 'cuda':
            raise ValueError('--amp needs a CUDA device')
        ow_cfg.type = 'AmpOptimWrapper'
        ow_cfg.dtype = 'bfloat16'
    optim_wrapper = build_optim_wrapper(model, ow_cfg)
    return BenchmarkSetup(cfg, model, optim_wrapper, bsz, img, tiny, tmp)


def enter_stages(model: nn.Module, optim_wrapper, stages: Sequence[Stage],
                 bsz: int, img: int, num_pose: int, gen: torch.Generator,
                 only: Optional[Sequence[str]] = None) -> Iterator[Stage]:
    """Enter the stages one after the other, as a training run does.

    Each stage is entered with :func:`enter_stage` and
    :func:`train_mode`; a stage that trains on pseudo-labels gets random
    ones of the batch (:func:`random_bank`).

    Args:
        model (nn.Module): The model.
        optim_wrapper (OptimWrapper): Its optimizer wrapper (the stage's
            lr is set there).
        stages (Sequence[Stage]): The stage table.
        bsz (int): Images per batch (rows of the bank).
        img (int): Input side in pixels.
        num_pose (int): Pose clusters Q of two-stage clustering.
        gen (torch.Generator): Source of the random pseudo-labels.
        only (Sequence[str], optional): Enter only the stages of these
            names (all when empty or None).

    Yields:
        Stage: Each selected stage, after the model was switched to it.
    """
    fixed = fixed_parameters(model)
    for stage in stages:
        if only and stage.name not in only:
            continue
        enter_stage(model, stage, optim_wrapper, fixed)
        train_mode(model)
        if stage.pseudo_labels is not None:
            model.set_pseudo_labels(
                random_bank(model, bsz, img, num_pose, stage.two_stage, gen))
        yield stage


def count_stages(model: nn.Module, optim_wrapper, stages: Sequence[Stage],
                 inputs: Tensor, samples: List, timer: PartTimer, bsz: int,
                 img: int, num_pose: int, gen: torch.Generator,
                 peak_tflops: float = 989., target: float = 0.1,
                 only: Optional[Sequence[str]] = None
                 ) -> Dict[str, Dict[str, float]]:
    """FLOPs of one iteration per stage on the ``meta`` device, printed
    with the time floor at ``peak_tflops``.

    Boolean selections count every element as selected (an upper bound;
    the masks of this model are nearly all true).

    Args:
        model (nn.Module): The model, built on ``meta``.
        optim_wrapper (OptimWrapper): Its optimizer wrapper.
        stages (Sequence[Stage]): The stage table.
        inputs (Tensor): (B, 3, S, S) batch.
        samples (list[PoseDataSample]): The batch's data samples.
        timer (PartTimer): Timer of the iterations (on ``meta``).
        bsz (int): Images per batch.
        img (int): Input side in pixels.
        num_pose (int): Pose clusters Q.
        gen (torch.Generator): Source of the random pseudo-labels.
        peak_tflops (float): Accelerator peak in TFLOP/s.
        target (float): s/iter averaged over the schedule whose needed
            share of the peak is printed.
        only (Sequence[str], optional): Only the stages of these names.

    Returns:
        dict[str, dict[str, float]]: Stage name -> :func:`flop_split` of
        one iteration.
    """
    import torch.fx.experimental._config as fx_config

    # nonzero on meta: every element selected (an upper bound)
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
        return _count_stages(model, optim_wrapper, stages, inputs, samples,
                             timer, bsz, img, num_pose, gen, peak_tflops,
                             target, only)


def _count_stages(model: nn.Module, optim_wrapper, stages: Sequence[Stage],
                  inputs: Tensor, samples: List, timer: PartTimer, bsz: int,
                  img: int, num_pose: int, gen: torch.Generator,
                  peak_tflops: float, target: float,
                  only: Optional[Sequence[str]]
                  ) -> Dict[str, Dict[str, float]]:
    """:func:`count_stages` inside its meta-device setting."""
    peak = peak_tflops * 1e12
    print(f'FLOPs of one iteration (meta device: counted, not run); time '
          f'floor at {peak_tflops:g} TFLOP/s')
    print(f'{"stage":10s} {"FLOP/iter":>13s} '
          + ' '.join(f'{p:>11s}' for p in FLOP_PARTS)
          + f' {"s/iter at peak":>15s}')
    total_flops = 0.
    total_iters = 0
    results = {}
    for stage in enter_stages(model, optim_wrapper, stages, bsz, img,
                              num_pose, gen, only):
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
              f'{target:g} s/iter needs '
              f'{100 * avg / (target * peak):.0f}% of the peak '
              f'(stages run: {", ".join(results)})')
    return results


def synthetic_batch(bsz: int, img: int, device: torch.device,
                    gen: torch.Generator) -> Tuple[Tensor, List]:
    """Random images in [-1, 1] and their data samples.

    Args:
        bsz (int): Images.
        img (int): Side in pixels.
        device (torch.device): Device of the images.
        gen (torch.Generator): Source of the pixels.

    Returns:
        tuple: ``inputs`` (B, 3, S, S) and B ``PoseDataSample`` with
        ``sample_idx`` and ``input_size``.
    """
    inputs = (torch.rand(bsz, 3, img, img, generator=gen) * 2 - 1).to(device)
    samples = []
    for i in range(bsz):
        ds = PoseDataSample()
        ds.set_metainfo(dict(sample_idx=i, input_size=(img, img)))
        samples.append(ds)
    return inputs, samples


def benchmark_training(opts: BenchmarkOptions
                       ) -> Dict[str, Dict[str, float]]:
    """Time (or, on ``meta``, count) every training stage of a config and
    print the table (see ``tools/analysis/benchmark_training.py``).

    Args:
        opts (BenchmarkOptions): What to run.

    Returns:
        dict[str, dict[str, float]]: Stage name -> figures: ``s_iter``,
        ``peak`` (GB) and, with ``opts.flops``, the :func:`flop_split`
        entries; on the ``meta`` device only the :func:`flop_split`
        entries.

    Raises:
        ValueError: ``iters`` below 1, a config that does not train with
            ``ULDTrainLoop``, unknown stage names, or an option the config
            or device does not allow (:func:`build`).
    """
    if opts.iters < 1:
        raise ValueError(f'--iters must be >= 1, got {opts.iters}')
    register_all_modules(init_default_scope=True)
    device = torch.device(opts.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    cfg, model, optim_wrapper, bsz, img, tiny, _tmp = build(opts, device)
    loop = cfg.get('train_cfg', None) or {}
    if loop.get('type') not in ('ULDTrainLoop', 'mmuld.ULDTrainLoop'):
        raise ValueError(f'{opts.config} does not train with ULDTrainLoop '
                         '(train_cfg.type): nothing to benchmark')
    stages = list(schedule_of(model))
    if opts.stages:
        unknown = set(opts.stages) - {s.name for s in stages}
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
    print(f'config: {opts.config}')
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
              f'amp: {"bf16" if opts.amp else "off"}')
    else:
        print(f'model: {type(bb).__name__} (trainable; timed in the '
              f'"aggregator" column, "sd" is 0), device: {device}{name}, '
              f'batch: {bsz}, img: {img}, out_stride: {bb.out_stride}, '
              f'bootstrap loss: {loss_mode}, '
              f'amp: {"bf16" if opts.amp else "off"}')
    gen = torch.Generator().manual_seed(0)
    inputs, samples = synthetic_batch(bsz, img, device, gen)
    timer = PartTimer(device)
    if device.type == 'meta':
        return count_stages(model, optim_wrapper, stages, inputs, samples,
                            timer, bsz, img, num_pose, gen,
                            opts.peak_tflops, opts.target, opts.stages)
    instrument(model, timer)
    header = (f'{"stage":10s} {"s/iter":>8s} {"img/s":>8s} {"peak":>10s} '
              + ' '.join(f'{p:>12s}' for p in PARTS))
    print(header)
    total_time = 0.
    total_iters = 0
    rows = []
    results = {}
    for stage in enter_stages(model, optim_wrapper, stages, bsz, img,
                              num_pose, gen, opts.stages):
        for _ in range(opts.warmup):
            run_iteration(model, optim_wrapper, inputs, samples, timer)
        flops = None
        if opts.flops:
            flops = count_iteration(model, optim_wrapper, inputs, samples,
                                    timer)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        timer.totals.clear()
        for _ in range(opts.iters):
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
        if opts.profile:
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
