# Copyright (c) mmuld contributors. All rights reserved.
"""The training benchmark (mmuld.engine.benchmark) runs every stage on the
CPU; tools/analysis/benchmark_training.py is its command line."""
import dataclasses
import importlib.util
import os.path as osp
import re

import pytest
import torch
from torch import nn

from mmuld.engine.benchmark import (BenchmarkOptions, benchmark_training,
                                    build, flop_split, format_flops,
                                    random_bank, summarise)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_training.py')
CONFIG = osp.join(ROOT, 'configs', 'dldpp_aflw.py')
CPU_CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_training', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(config, **kwargs):
    return benchmark_training(BenchmarkOptions(config=config, **kwargs))


def _rows(out):
    return {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()}


def test_tiny_runs_every_stage(capsys):
    res = _run(CONFIG, tiny=True, iters=2, warmup=0, img_size=32,
               device='cpu')
    out = capsys.readouterr().out
    rows = _rows(out)
    for stage in ('bootstrap', 'duld', 'proxy', 'dldpp'):
        assert stage in rows, out
        s_iter, img_s = float(rows[stage][1]), float(rows[stage][2])
        assert s_iter > 0
        # s/iter is printed with 3 decimals: its rounding sets the tolerance
        assert img_s == pytest.approx(
            2 / s_iter, rel=0.01 + 0.0006 / s_iter, abs=0.006)
        shares = [float(v.rstrip('%')) for v in rows[stage][-5:]]
        assert all(v >= 0 for v in shares)
        assert sum(shares) == pytest.approx(100, abs=1.0)
        # SD and the aggregator ran and took time in every stage
        assert shares[0] > 0 and shares[1] > 0
    assert 'projected wall time' in out
    # CPU peak: weights and the tensors of an iteration;
    # bootstrapping trains the aggregator on twice the images of the
    # frozen-aggregator stages
    assert 'TensorMemoryTracker' in out
    assert all(r['peak'] > 0 for r in res.values())
    assert res['bootstrap']['peak'] > res['proxy']['peak']
    # 50k + 100k + 50k + 100k iterations of configs/dldpp_aflw.py
    assert 'schedule: 300000 iterations' in out


def test_bad_arguments():
    with pytest.raises(ValueError, match='unknown stages'):
        _run(CONFIG, tiny=True, iters=1, device='cpu', stages=['nope'])
    with pytest.raises(ValueError, match='--amp needs a CUDA'):
        _run(CONFIG, tiny=True, device='cpu', amp=True)
    with pytest.raises(ValueError, match='--iters must be >= 1'):
        _run(CONFIG, tiny=True, device='cpu', iters=0)


def test_tool_parses_and_calls_the_package(capsys):
    """The command line's options are :class:`BenchmarkOptions` (same
    names, same defaults) and its ``main`` runs the benchmark."""
    tool = _load_tool()
    args = tool.parse_args([CONFIG])
    defaults = {f.name: f.default for f in dataclasses.fields(
        BenchmarkOptions) if f.name not in ('config', 'device')}
    assert {k: v for k, v in vars(args).items()
            if k in defaults} == defaults
    assert set(vars(args)) == {f.name for f in dataclasses.fields(
        BenchmarkOptions)}
    res = tool.main([CPU_CONFIG, '--iters', '1', '--warmup', '0',
                     '--img-size', '32', '--batch-size', '2', '--device',
                     'cpu', '--stages', 'duld'])
    out = capsys.readouterr().out
    assert list(res) == ['duld'] and res['duld']['s_iter'] > 0
    assert 'stages run: duld' in out
    with pytest.raises(ValueError, match='unknown stages'):
        tool.main([CONFIG, '--tiny', '--iters', '1', '--device', 'cpu',
                   '--stages', 'nope'])


def test_trainable_backbone_config(capsys):
    """A config with a trainable backbone (FeatureMapAdapter + ResNet) is
    benchmarked as it is; the SD-only options are refused."""
    _run(CPU_CONFIG, iters=1, warmup=0, img_size=32, batch_size=2,
         device='cpu')
    out = capsys.readouterr().out
    assert 'FeatureMapAdapter' in out
    rows = _rows(out)
    for stage in ('bootstrap', 'duld', 'proxy', 'dldpp'):
        shares = [float(v.rstrip('%')) for v in rows[stage][-5:]]
        assert shares[0] == 0 and shares[1] > 0  # no SD; the backbone ran
    assert 'schedule: 1050 iterations' in out
    with pytest.raises(ValueError, match='Stable Diffusion'):
        _run(CPU_CONFIG, tiny=True, iters=1)


def test_profile_prints_the_top_operators(capsys):
    _run(CPU_CONFIG, iters=1, warmup=0, img_size=32, batch_size=2,
         device='cpu', stages=['bootstrap'], profile=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines()
             if re.match(r'^ {4} *[0-9.]+ ms +[0-9.]+%  \S', ln)]
    assert len(lines) == 10
    shares = [float(re.search(r'([0-9.]+)%', ln).group(1)) for ln in lines]
    assert shares == sorted(shares, reverse=True)
    assert 0 < sum(shares) <= 100.5


def test_meta_device_counts_the_flops_of_a_real_run(capsys):
    """``device='meta'`` counts the FLOPs the CPU run performs, without
    computing: the same SD and aggregator FLOPs in every stage, and the
    bootstrapping pair doubles the SD work of one batch."""
    common = dict(tiny=True, iters=1, warmup=0, img_size=32)
    cpu = _run(CONFIG, device='cpu', flops=True, **common)
    meta = _run(CONFIG, device='meta', **common)
    out = capsys.readouterr().out
    # the meta-only setting does not outlive the count
    import torch.fx.experimental._config as fx_config
    assert not fx_config.meta_nonzero_assume_all_nonzero
    assert 'time floor at 989 TFLOP/s' in out
    assert 'needs' in out and '% of the peak' in out
    assert set(meta) == set(cpu) == {'bootstrap', 'duld', 'proxy', 'dldpp'}
    for stage in meta:
        m, c = meta[stage], cpu[stage]
        for part in ('vae', 'unet', 'aggregator'):
            assert m[part] > 0
            assert m[part] == c[part], (stage, part)
        assert m['total'] == pytest.approx(
            m['vae'] + m['unet'] + m['aggregator'] + m['rest'])
        # selections count every element on meta: an upper bound
        assert c['rest'] <= m['rest'] <= 1.5 * c['rest']
    assert meta['bootstrap']['total'] == cpu['bootstrap']['total']
    for part in ('vae', 'unet'):
        assert meta['bootstrap'][part] == 2 * meta['duld'][part]
    # the aggregator trains in D-ULD (backward too), is frozen in D-ULD++
    assert meta['duld']['aggregator'] > 2 * meta['dldpp']['aggregator']


def test_format_flops():
    assert format_flops(0.) == '0.00 GFLOP'
    assert format_flops(2.5e9) == '2.50 GFLOP'
    assert format_flops(9.99e10) == '99.90 GFLOP'
    assert format_flops(1e11) == '0.10 TFLOP'
    assert format_flops(127.9e12) == '127.90 TFLOP'


class _TinyBackbone(nn.Module):
    """A trainable backbone (no SD): one convolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class _TinyModel(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = _TinyBackbone()
        self.head = nn.Linear(4, 6)


def test_flop_split_of_a_tiny_model_sums_to_the_total():
    """A trainable backbone's FLOPs (forward and backward) are the
    aggregator's, the head's the rest; the parts sum to the total."""
    from torch.utils.flop_counter import FlopCounterMode
    model = _TinyModel()
    b, h, w = 2, 8, 8
    x = torch.rand(b, 3, h, w)
    with FlopCounterMode(display=False) as counter:
        feat = model.backbone(x)
        model.head(feat.mean((2, 3))).sum().backward()
    split = flop_split(counter, model)
    assert set(split) == {'total', 'vae', 'unet', 'aggregator', 'rest'}
    assert split['vae'] == split['unet'] == 0
    conv = 2 * b * 4 * h * w * 3 * 3 * 3  # forward of the convolution
    # backward: the weight gradient (the input needs none)
    assert split['aggregator'] == 2 * conv
    # linear: forward, input gradient and weight gradient
    assert split['rest'] == 3 * 2 * b * 4 * 6
    assert split['total'] == split['aggregator'] + split['rest']


def test_summarise_splits_the_iteration_into_its_parts():
    totals = dict(sd=0.2, agg_fwd=0.4, agg_bwd=0.6, forward=1.0,
                  backward_heads=0.2, optimizer=0.2, total=2.4,
                  iterations=2)
    s = summarise(totals)
    assert s['sd'] == pytest.approx(0.1)
    assert s['aggregator'] == pytest.approx(0.5)
    # forward minus SD and the aggregator, plus the heads' backward
    assert s['heads_losses'] == pytest.approx(0.3)
    assert s['optimizer'] == pytest.approx(0.1)
    assert s['total'] == pytest.approx(1.2)
    assert s['other'] == pytest.approx(0.2)
    # never negative
    assert summarise(dict(total=1.0, forward=2.0, iterations=1))['other'] \
        == 0.


@pytest.mark.parametrize('two_stage', [False, True])
def test_random_bank_is_valid_for_the_model(two_stage):
    """The bank has the requested number of rows, the model's K landmarks
    inside the input, labels of the clustering kind (u * K + k with two-
    stage clustering, k otherwise; -1 where invalid) and codes of the pose
    VAE's size."""
    setup = build(BenchmarkOptions(config=CPU_CONFIG, img_size=32,
                                   batch_size=2), torch.device('cpu'))
    model = setup.model
    k, q, n, img = model.num_landmarks, 4, 50, 32
    bank = random_bank(model, n, img, q, two_stage,
                       torch.Generator().manual_seed(0))
    assert bank.keypoints.shape == (n, k, 2)
    assert bank.valid.shape == bank.labels.shape == (n, k)
    assert bank.pose_labels.shape == (n, )
    assert bank.codes.shape == (n, model.pose_vae.latent_dim)
    assert bank.keypoints.min() >= 0 and bank.keypoints.max() <= img - 1
    # only the last landmark is ever missing, in some images
    assert bank.valid[:, :-1].all() and not bank.valid[:, -1].all()
    assert bank.valid[:, -1].any()
    assert (bank.labels[~bank.valid] == -1).all()
    slot = torch.arange(k).expand(n, k)
    if two_stage:
        assert bank.pose_labels.min() >= 0 and bank.pose_labels.max() < q
        assert len(bank.pose_labels.unique()) > 1
        expect = bank.pose_labels[:, None] * k + slot
    else:
        assert (bank.pose_labels == 0).all()
        expect = slot
    assert (bank.labels[bank.valid] == expect[bank.valid]).all()
    assert bank.labels.max() < (q * k if two_stage else k)
    # the model takes it and looks up a batch
    model.set_pseudo_labels(bank)
    assert torch.equal(model.pseudo_labels.labels, bank.labels)
