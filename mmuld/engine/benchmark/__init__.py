# Copyright (c) mmuld contributors. All rights reserved.
"""The benchmarks (``tools/analysis/benchmark_training.py``,
``tools/analysis/benchmark_backbone.py``).

- :mod:`.timing`: :class:`PartTimer`, :func:`instrument`,
  :func:`run_iteration`, :func:`summarise`, :func:`tensor_peak`,
  :func:`profile_iteration`;
- :mod:`.flops`: :func:`count_iteration`, :func:`flop_split`,
  :func:`flops_by_module`, :func:`format_flops`;
- :mod:`.bank`: :func:`random_bank` (random valid pseudo-labels);
- :mod:`.run`: :func:`benchmark_training` (:class:`BenchmarkOptions`),
  :func:`build`, :func:`enter_stages`, :func:`count_stages`;
- :mod:`.backbone`: :func:`benchmark_backbone`, the SD backbone's
  benchmark (``tools/analysis/benchmark_backbone.py``).
"""
from .bank import random_bank
from .flops import (FLOP_PARTS, count_iteration, flop_split, flops_by_module,
                    format_flops)
from .run import (BenchmarkOptions, BenchmarkSetup, benchmark_training, build,
                  count_stages, enter_stages, synthetic_batch)
from .timing import (PARTS, PartTimer, instrument, is_sd, profile_iteration,
                     run_iteration, summarise, tensor_peak)

__all__ = [
    'BenchmarkOptions', 'BenchmarkSetup', 'FLOP_PARTS', 'PARTS', 'PartTimer',
    'benchmark_training', 'build', 'count_iteration', 'count_stages',
    'enter_stages', 'flop_split', 'flops_by_module', 'format_flops',
    'instrument', 'is_sd', 'profile_iteration', 'random_bank',
    'run_iteration', 'summarise', 'synthetic_batch', 'tensor_peak'
]
