# Copyright (c) mmuld contributors. All rights reserved.
"""FLOPs of a training iteration, by part.

One iteration runs under ``torch.utils.flop_counter.FlopCounterMode``,
which counts matrix products, convolutions and attention (element-wise
work such as GroupNorm, activations and the optimizer step is memory-bound
and not counted). :func:`flop_split` divides the count into
:data:`FLOP_PARTS`: the VAE encoder, the UNet, the aggregator (forward and
backward; the whole backbone of a non-SD config) and the rest (heads and
losses).
"""
import contextlib
from typing import Dict, List

from torch import Tensor, nn

from .timing import PartTimer, is_sd, run_iteration

#: The parts of an iteration's FLOPs, in the order they are printed.
FLOP_PARTS = ('vae', 'unet', 'aggregator', 'rest')


def flops_by_module(counter) -> Dict[str, float]:
    """Total FLOPs per module name of a ``FlopCounterMode``.

    The counter names a module by the class of the first module it saw
    (its root) and the attribute path below it; ``'Global'`` is
    everything.

    Args:
        counter (FlopCounterMode): A finished counter.

    Returns:
        dict[str, float]: Module name -> FLOPs (all operators together).
    """
    return {
        name: float(sum(by_op.values()))
        for name, by_op in counter.get_flop_counts().items()
    }


def flop_split(counter, model: nn.Module,
               sd_counter=None) -> Dict[str, float]:
    """FLOPs of an iteration counted by ``counter`` (a ``FlopCounterMode``
    opened before the model's first call), by part.

    Args:
        counter (FlopCounterMode): The finished counter.
        model (nn.Module): The benchmarked model.
        sd_counter (FlopCounterMode, optional): A counter of the SD
            extraction alone (it ends the UNet call with an exception, so
            the outer counter would go on crediting later modules to the
            UNet). Needed for an SD backbone.

    Returns:
        dict[str, float]: ``total``, ``vae`` (encoder), ``unet``,
        ``aggregator`` (or the whole trainable backbone of a non-SD
        config; forward and backward) and ``rest`` (heads and losses).
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
    """A FLOP count for a table.

    Args:
        flops (float): FLOPs.

    Returns:
        str: ``'X.XX TFLOP'``, or ``'X.XX GFLOP'`` below 0.1 TFLOP.
    """
    if flops >= 1e11:
        return f'{flops / 1e12:.2f} TFLOP'
    return f'{flops / 1e9:.2f} GFLOP'


def count_iteration(model: nn.Module, optim_wrapper, inputs: Tensor,
                    samples: List, timer: PartTimer) -> Dict[str, float]:
    """One iteration (:func:`run_iteration`) under ``FlopCounterMode``.

    On the CPU, attention runs through the math backend while counted (the
    CPU's fused attention kernel has no FLOP formula; CUDA's kernels and
    the meta device's have).

    Args:
        model (nn.Module): The model, in its current stage.
        optim_wrapper (OptimWrapper): Its optimizer wrapper.
        inputs (Tensor): (B, 3, S, S) batch.
        samples (list[PoseDataSample]): The batch's data samples.
        timer (PartTimer): The timer of :func:`run_iteration` (the
            iteration adds to its totals).

    Returns:
        dict[str, float]: :func:`flop_split` of the iteration.
    """
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
