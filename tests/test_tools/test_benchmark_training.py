# Copyright (c) mmuld contributors. All rights reserved.
"""tools/analysis/benchmark_training.py runs every stage on the CPU."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_training.py')
CONFIG = osp.join(ROOT, 'configs', 'dldpp_aflw.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_training', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiny_runs_every_stage(capsys):
    tool = _load_tool()
    res = tool.main([CONFIG, '--tiny', '--iters', '2', '--warmup', '0',
                     '--img-size', '32', '--device', 'cpu'])
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()}
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
    tool = _load_tool()
    with pytest.raises(ValueError, match='unknown stages'):
        tool.main([CONFIG, '--tiny', '--iters', '1', '--device', 'cpu',
                   '--stages', 'nope'])
    with pytest.raises(ValueError, match='--amp needs a CUDA'):
        tool.main([CONFIG, '--tiny', '--device', 'cpu', '--amp'])


def test_trainable_backbone_config(capsys):
    """A config with a trainable backbone (FeatureMapAdapter + ResNet) is
    benchmarked as it is; the SD-only options are refused."""
    tool = _load_tool()
    cfg = osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py')
    tool.main([cfg, '--iters', '1', '--warmup', '0', '--img-size', '32',
               '--batch-size', '2', '--device', 'cpu'])
    out = capsys.readouterr().out
    assert 'FeatureMapAdapter' in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()}
    for stage in ('bootstrap', 'duld', 'proxy', 'dldpp'):
        shares = [float(v.rstrip('%')) for v in rows[stage][-5:]]
        assert shares[0] == 0 and shares[1] > 0  # no SD; the backbone ran
    assert 'schedule: 1050 iterations' in out
    with pytest.raises(ValueError, match='Stable Diffusion'):
        tool.main([cfg, '--tiny', '--iters', '1'])


def test_meta_device_counts_the_flops_of_a_real_run(capsys):
    """``--device meta`` counts the FLOPs the CPU run performs, without
    computing: the same SD and aggregator FLOPs in every stage, and the
    bootstrapping pair doubles the SD work of one batch."""
    tool = _load_tool()
    common = [CONFIG, '--tiny', '--iters', '1', '--warmup', '0',
              '--img-size', '32']
    cpu = tool.main(common + ['--device', 'cpu', '--flops'])
    meta = tool.main(common + ['--device', 'meta'])
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
