# Copyright (c) mmuld contributors. All rights reserved.
"""tools/analysis/benchmark_backbone.py runs on the CPU and checks itself."""
import importlib.util
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_backbone.py')


def test_tiny_backbone_benchmark(capsys):
    spec = importlib.util.spec_from_file_location('benchmark_backbone', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(['--tiny', '--device', 'cpu', '--iters', '1'])
    out = capsys.readouterr().out
    # the batched extractor gives the naive one's features
    diff = float(re.search(r'max relative feature difference: (\S+)',
                           out).group(1))
    assert diff < 1e-4
    flops = float(re.search(r'FLOPs per image .*: (\S+) GFLOP', out).group(1))
    assert flops > 0
    # CPU peak: the tensors of a forward on top of the weights, > 0
    peak = float(re.search(r'peak memory: (\S+) GiB \(tensors', out).group(1))
    assert 0 < peak < 1
