# Copyright (c) mmuld contributors. All rights reserved.
"""tools/train.py + --resume on the CPU, and a corrupt training image."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

from mmengine.config import Config
from mmengine.runner import Runner

from mmuld.clustering import PseudoLabelBank
from mmuld.datasets.transforms import SafeLoadImage
from mmuld.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = """
_base_ = [{base!r}]
stages = [
    dict(name='bootstrap', iters=2, lr=1e-3, frozen=['pose_vae'],
         pseudo_labels=None),
    dict(name='duld', iters=3, lr=1e-3, frozen=['pose_vae'],
         pseudo_labels='kmeans'),
]
train_cfg = dict(clustering=dict(interval=2, batch_size=4))
model = dict(backbone=dict(pretrained={sd!r}), stages=stages)
default_hooks = dict(checkpoint=dict(interval=1))
train_dataloader = dict(dataset=dict(data_root={root!r}))
"""


def _write_cfg(tmp_path, tiny_sd_dir, data_root):
    cfg = tmp_path / 'tiny_duld.py'
    cfg.write_text(
        CONFIG.format(
            base=osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py'),
            sd=tiny_sd_dir,
            root=data_root))
    return str(cfg)


def _env():
    """Environment whose `mmuld` is the tree under test (not whatever the
    venv's editable install points at)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                  if p])
    return env


def _train(cfg, work, *extra):
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg,
           '--work-dir', str(work), *extra]
    out = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env=_env())
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_subprocess_imports_the_tree_under_test():
    out = subprocess.run(
        [sys.executable, '-c', 'import mmuld; print(mmuld.__file__)'],
        capture_output=True, text=True, cwd='/', env=_env())
    assert out.returncode == 0, out.stderr
    assert osp.realpath(out.stdout.strip()) == osp.realpath(
        osp.join(ROOT, 'mmuld', '__init__.py'))


def test_train_then_resume_with_tools_train(tmp_path, tiny_sd_dir):
    cfg = _write_cfg(tmp_path, tiny_sd_dir,
                     osp.join(ROOT, 'data', 'face_samples'))
    work = tmp_path / 'work'
    # a run stopped after 3 of 5 iterations (in the D-ULD stage): the same
    # table with a D-ULD stage of 1 iteration
    _train(cfg, work, '--cfg-options', 'model.stages.1.iters=1')
    assert osp.isfile(work / 'iter_3.pth')
    assert not osp.isfile(work / 'iter_4.pth')
    rounds = sorted(glob.glob(str(work / 'pseudo_labels' / '*.npz')))
    # the round at iteration 2 and the final round after iteration 3
    assert [osp.basename(r) for r in rounds] == [
        'round_001_iter_2.npz', 'round_002_iter_3.npz'
    ]
    # --resume picks up the last checkpoint, its stage and pseudo-labels
    log = _train(cfg, work, '--resume')
    assert 'resumed epoch: 0, iter: 3' in log
    assert 'restored pseudo-labels of round 2 (stage "duld", iteration 3)' \
        in log
    assert 'ULD stage 2/2 "duld" from iteration 3' in log
    assert osp.isfile(work / 'iter_5.pth')
    assert osp.isfile(work / 'stage2_duld.pth')
    # the restored round is recent (interval 2): no round until the final
    # one after iteration 5
    rounds = sorted(glob.glob(str(work / 'pseudo_labels' / '*.npz')))
    assert [osp.basename(r) for r in rounds] == [
        'round_001_iter_2.npz', 'round_002_iter_3.npz', 'round_003_iter_5.npz'
    ]


def test_corrupt_training_image_is_skipped(tmp_path, tiny_sd_dir):
    data = tmp_path / 'face_samples'
    shutil.copytree(osp.join(ROOT, 'data', 'face_samples'), data)
    ann = json.load(open(data / 'uld_5pt_train.json'))
    bad = ann['images'][0]['file_name']
    (data / bad).write_bytes(b'this is not an image')
    register_all_modules()
    cfg = Config.fromfile(_write_cfg(tmp_path, tiny_sd_dir, str(data)))
    cfg.work_dir = str(tmp_path / 'work')
    SafeLoadImage.skipped.clear()
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 5
    skipped = {k: v for k, v in SafeLoadImage.skipped.items() if v}
    assert list(skipped) == [str(data / bad)]
    # the corrupt image has no pseudo-labels, the others do
    bank = PseudoLabelBank.load(
        sorted(glob.glob(str(tmp_path / 'work' / 'pseudo_labels' /
                             '*.npz')))[-1])
    assert not bank.valid[0].any()
    assert bank.valid[1:].any(dim=1).all()
