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
    figures = tool.main(['--tiny', '--device', 'cpu', '--iters', '1'])
    out = capsys.readouterr().out
    assert figures['max_rel_diff'] < 1e-4 and figures['extract_img_s'] > 0
    # the batched extractor gives the naive one's features
    diff = float(re.search(r'max relative feature difference: (\S+)',
                           out).group(1))
    assert diff < 1e-4
    flops = float(re.search(r'FLOPs per image .*: (\S+) GFLOP', out).group(1))
    assert flops > 0
    # CPU peak: the tensors of a forward on top of the weights, > 0
    peak = float(re.search(r'peak memory: (\S+) GiB \(tensors', out).group(1))
    assert 0 < peak < 1


def test_backbone_settings_come_from_the_config_and_the_overrides():
    from mmuld.engine.benchmark.backbone import backbone_settings
    cfg = osp.join(ROOT, 'configs', 'dldpp_aflw.py')
    full = backbone_settings(cfg, tiny=False)
    assert full['out_stride'] == 4 and full['agg_channels'] == 384
    assert full['sd_input_size'] == 512
    assert full['agg_cfg'].get('with_cp') is True
    # the tiny model ignores SD-1.5's input size unless it is given
    assert backbone_settings(cfg, tiny=True)['sd_input_size'] is None
    assert backbone_settings(cfg, True, sd_input_size=128)[
        'sd_input_size'] == 128
    over = backbone_settings(cfg, False, out_stride=8, agg_channels=64,
                             sd_input_size=0)
    assert (over['out_stride'], over['agg_channels'],
            over['sd_input_size']) == (8, 64, None)


def test_seconds_per_call_counts_the_calls():
    import time

    import torch

    from mmuld.engine.benchmark.backbone import seconds_per_call
    calls = []
    t = seconds_per_call(lambda: (calls.append(1), time.sleep(0.01)),
                         torch.device('cpu'), 3)
    assert len(calls) == 3 and 0.009 < t < 0.5
