# Copyright (c) mmuld contributors. All rights reserved.
"""Timing of the parts of a training iteration, and its peak memory.

A :class:`PartTimer` accumulates wall time per part, synchronising the
device at each boundary (``torch.cuda.synchronize`` + ``perf_counter``).
:func:`instrument` wraps the frozen SD extractor and the aggregator of a
model with it (the backward boundary is a gradient hook on the aggregator
output), :func:`run_iteration` runs and times one training iteration and
:func:`summarise` turns the totals into seconds per iteration of
:data:`PARTS`.
"""
import time
from collections import defaultdict
from typing import Callable, Dict, List

import torch
from torch import Tensor, nn

from mmuld.utils.tensor_memory import (TensorMemoryTracker,
                                       optimizer_state_tensors)

#: The parts of an iteration that :func:`summarise` reports, in order.
PARTS = ('sd', 'aggregator', 'heads_losses', 'optimizer', 'other')


class PartTimer:
    """Accumulates wall time per part, synchronising the device.

    Args:
        device (torch.device): The device the timed work runs on (CUDA is
            synchronised before every reading of the clock).

    Attributes:
        totals (dict[str, float]): Seconds (and the ``iterations`` count)
            accumulated per part.
        marks (dict[str, float]): Clock readings of the current iteration
            (``agg_grad``: the gradient reached the aggregator output).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.totals: Dict[str, float] = defaultdict(float)
        self.marks: Dict[str, float] = {}

    def now(self) -> float:
        """The clock, after the device's queued work has finished.

        Returns:
            float: ``time.perf_counter()``.
        """
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def add(self, part: str, seconds: float) -> None:
        """Add ``seconds`` to the total of ``part``.

        Args:
            part (str): Part name.
            seconds (float): Time to add (or a count, for ``iterations``).
        """
        self.totals[part] += seconds


def _timed_forward(forward: Callable, timer: PartTimer) -> Callable:
    """``forward`` timed as the aggregator's part.

    Args:
        forward (Callable): The forward to wrap.
        timer (PartTimer): Receives ``agg_fwd``; ``timer.marks['agg_grad']``
            is set when the gradient reaches the output (the first tensor
            of a tuple) in the backward pass.

    Returns:
        Callable: The wrapped forward.
    """

    def timed(*args, **kwargs):
        t0 = timer.now()
        out = forward(*args, **kwargs)
        timer.add('agg_fwd', timer.now() - t0)
        feat = out[0] if isinstance(out, (tuple, list)) else out
        if feat.requires_grad:

            def hook(grad: Tensor) -> Tensor:
                timer.marks['agg_grad'] = timer.now()
                return grad

            feat.register_hook(hook)
        return out

    return timed


def is_sd(backbone: nn.Module) -> bool:
    """Whether ``backbone`` is the Stable Diffusion backbone.

    Args:
        backbone (nn.Module): A model's backbone.

    Returns:
        bool: True for a frozen SD extractor + trainable aggregator
        (``extract_features`` and ``aggregator``), False for any other
        (trainable) backbone.
    """
    return hasattr(backbone, 'extract_features') and hasattr(
        backbone, 'aggregator')


def instrument(model: nn.Module, timer: PartTimer) -> None:
    """Wrap the SD extractor and the aggregator of ``model`` with timers.

    A trainable backbone other than SD is timed whole, as the aggregator.
    Sets ``timer.marks['agg_grad']`` when the gradient reaches the
    aggregator output in the backward pass.

    Args:
        model (nn.Module): The benchmarked model (changed in place).
        timer (PartTimer): Receives ``sd`` and ``agg_fwd``.
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


def run_iteration(model: nn.Module, optim_wrapper, inputs: Tensor,
                  samples: List, timer: PartTimer) -> None:
    """One training iteration (loss, backward, step), timed by part.

    On the ``meta`` device the optimizer step (element-wise, no counted
    FLOPs) is skipped: gradient clipping reads the norm back.

    Args:
        model (nn.Module): The model, in its current stage.
        optim_wrapper (OptimWrapper): Its optimizer wrapper.
        inputs (Tensor): (B, 3, S, S) batch.
        samples (list[PoseDataSample]): The batch's data samples.
        timer (PartTimer): Receives ``forward``, ``backward_heads``,
            ``agg_bwd``, ``optimizer``, ``total`` and one ``iterations``.
    """
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


def profile_iteration(model: nn.Module, optim_wrapper, inputs: Tensor,
                      samples: List, timer: PartTimer,
                      rows: int = 10) -> None:
    """Print the operators that take most device (or CPU) time in one
    iteration (``torch.profiler``).

    Args:
        model (nn.Module): The model, in its current stage.
        optim_wrapper (OptimWrapper): Its optimizer wrapper.
        inputs (Tensor): (B, 3, S, S) batch.
        samples (list[PoseDataSample]): The batch's data samples.
        timer (PartTimer): The timer of :func:`run_iteration`.
        rows (int): Operators printed. Defaults to 10.
    """
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


def tensor_peak(model: nn.Module, optim_wrapper, inputs: Tensor,
                samples: List, timer: PartTimer) -> int:
    """Peak tensor memory of one iteration on a device without
    ``max_memory_allocated`` (the CPU).

    Counts the weights (the frozen SD ones too), buffers, optimizer states
    and inputs, plus every tensor created while the iteration runs
    (:class:`TensorMemoryTracker`).

    Args:
        model (nn.Module): The model, in its current stage.
        optim_wrapper (OptimWrapper): Its optimizer wrapper.
        inputs (Tensor): (B, 3, S, S) batch.
        samples (list[PoseDataSample]): The batch's data samples.
        timer (PartTimer): The timer of :func:`run_iteration` (the
            iteration adds to its totals).

    Returns:
        int: Peak bytes.
    """
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
    """Seconds per iteration of each part, over the iterations the totals
    hold.

    Args:
        totals (dict[str, float]): :attr:`PartTimer.totals` of one or more
            :func:`run_iteration` calls.

    Returns:
        dict[str, float]: Every part of :data:`PARTS` and ``total``;
        ``other`` is what the named parts leave of the total (at least 0).
    """
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
