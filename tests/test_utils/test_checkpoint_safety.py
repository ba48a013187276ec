# Copyright (c) mmuld contributors. All rights reserved.
"""Checkpoints: never unpickle code, name the file when one is damaged,
resume from the previous checkpoint when the latest is truncated."""
import ast
import glob
import importlib.util
import os
import os.path as osp
import sys

import pytest
import torch

from mmuld.utils import (CheckpointError, find_resumable_checkpoint,
                         load_checkpoint_file, register_all_modules)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCANNED = ('mmuld', 'tools', 'projects')


def unsafe_torch_loads(source: str) -> list:
    """Line numbers of ``torch.load`` calls without ``weights_only=True``."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(
            f, 'id', None)
        if name != 'load':
            continue
        owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(
            f.value, ast.Name) else None
        if owner not in ('torch', None):
            continue
        if owner is None and 'from torch import load' not in source:
            continue
        ok = any(k.arg == 'weights_only' and isinstance(k.value, ast.Constant)
                 and k.value.value is True for k in node.keywords)
        if not ok:
            bad.append(node.lineno)
    return bad


def test_scanner_finds_unsafe_loads():
    assert unsafe_torch_loads('import torch\ntorch.load(f)\n') == [2]
    assert unsafe_torch_loads(
        'import torch\ntorch.load(f, weights_only=False)\n') == [2]
    assert unsafe_torch_loads(
        'from torch import load\nx = load(f)\n') == [2]
    assert unsafe_torch_loads(
        'import torch\ntorch.load(f, weights_only=True)\n') == []
    assert unsafe_torch_loads('import numpy as np\nnp.load(f)\n') == []


def test_every_torch_load_in_package_and_tools_is_weights_only():
    bad = []
    for folder in SCANNED:
        for path in glob.glob(osp.join(ROOT, folder, '**', '*.py'),
                              recursive=True):
            with open(path) as f:
                lines = unsafe_torch_loads(f.read())
            bad += [f'{osp.relpath(path, ROOT)}:{n}' for n in lines]
    assert not bad, f'torch.load without weights_only=True: {bad}'


class _Evil:
    """Unpickling this object runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def evil_pth(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta={}, payload=_Evil(marker)), path)
    return str(path), marker


def test_malicious_checkpoint_does_not_execute(evil_pth):
    path, marker = evil_pth
    register_all_modules()
    with pytest.raises(CheckpointError, match='refused to load .*evil.pth'):
        load_checkpoint_file(path)
    # mmengine's own loader (load_from, --resume, init_model) is the same
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(CheckpointError, match='evil.pth'):
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


def test_equivariance_tool_refuses_malicious_checkpoint(evil_pth):
    from mmuld.apis.equivariance import load_landmark_model
    path, marker = evil_pth
    with pytest.raises(CheckpointError, match='evil.pth'):
        load_landmark_model(
            osp.join(ROOT, 'configs', 'zeroshot_face_samples_demo.py'), path)
    assert not marker.exists()


@pytest.fixture
def good_pth(tmp_path):
    path = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.arange(1000.)), meta={}), path)
    return path


@pytest.mark.parametrize('damage', ['truncated', 'empty', 'random'])
def test_damaged_checkpoint_names_the_file(good_pth, tmp_path, damage):
    data = good_pth.read_bytes()
    bad = tmp_path / f'{damage}.pth'
    if damage == 'truncated':
        bad.write_bytes(data[:len(data) // 2])
    elif damage == 'empty':
        bad.write_bytes(b'')
    else:
        bad.write_bytes(os.urandom(len(data)))
    with pytest.raises(CheckpointError, match=f'{damage}.pth'):
        load_checkpoint_file(str(bad))
    register_all_modules()
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(CheckpointError, match=f'{damage}.pth'):
        _load_checkpoint(str(bad), map_location='cpu')
    assert torch.equal(
        load_checkpoint_file(str(good_pth))['state_dict']['w'],
        torch.arange(1000.))


def _train_tool():
    spec = importlib.util.spec_from_file_location(
        'uld_train_tool', osp.join(ROOT, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_auto_resume_skips_truncated_latest(tmp_path, monkeypatch):
    from mmengine.config import Config
    work = tmp_path / 'work'
    work.mkdir()
    for i, it in enumerate((2, 4, 6)):
        path = work / f'iter_{it}.pth'
        torch.save(dict(meta=dict(iter=it), state_dict={}), path)
        os.utime(path, (1000 + i, 1000 + i))
    last = work / 'iter_6.pth'
    last.write_bytes(last.read_bytes()[:100])  # killed while saving
    (work / 'last_checkpoint').write_text(str(last))
    assert find_resumable_checkpoint(str(work)) == str(work / 'iter_4.pth')
    # tools/train.py --resume resumes from it
    tool = _train_tool()
    monkeypatch.setattr(sys, 'argv', [
        'train.py',
        osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py'),
        '--work-dir', str(work), '--resume'
    ])
    cfg = tool.merge_args(
        Config.fromfile(sys.argv[1]), tool.parse_args())
    assert cfg.resume and cfg.load_from == str(work / 'iter_4.pth')
    # an intact latest checkpoint is used as it is
    torch.save(dict(meta=dict(iter=6), state_dict={}), last)
    assert find_resumable_checkpoint(str(work)) == str(last)
    # nothing intact: start from scratch
    for p in work.glob('*.pth'):
        p.write_bytes(b'')
    assert find_resumable_checkpoint(str(work)) is None
