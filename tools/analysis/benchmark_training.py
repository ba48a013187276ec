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

The benchmark is :func:`mmuld.engine.benchmark.benchmark_training`
(options: :class:`~mmuld.engine.benchmark.BenchmarkOptions`, the same
names and defaults as the arguments below); this script parses them and
calls it.

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
from typing import Dict, List, Optional

import torch
from mmengine.config import DictAction

from mmuld.engine.benchmark import BenchmarkOptions, benchmark_training


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` when ``argv`` is None)."""
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


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    """Run the benchmark (:func:`mmuld.engine.benchmark.benchmark_training`).

    Returns:
        dict: Stage name -> figures: ``s_iter``, ``peak`` (GB) and, with
        ``--flops``, the :func:`~mmuld.engine.benchmark.flop_split`
        entries; with ``--device meta`` only the ``flop_split`` entries.
    """
    args = parse_args(argv)
    return benchmark_training(BenchmarkOptions(**vars(args)))


if __name__ == '__main__':
    main()
