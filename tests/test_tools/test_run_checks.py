# Copyright (c) mmuld contributors. All rights reserved.
"""Results that are true or refused: stale stage checkpoints, foreign
checkpoints, leaked test images and bad data are caught before training."""
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch

from mmuld.evaluation import learnability_run
from mmuld.evaluation.run_checks import DataCheckError, check_splits

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CPU_CFG = osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py')


def _options(world, test, work_dir):
    """The benchmark's options for the world's training split."""
    return learnability_run.LearnabilityOptions(
        data_root=world['root'], train_ann='train.json', test_ann=test,
        work_dir=work_dir, config=CPU_CFG, zeroshot_config=osp.join(
            ROOT, 'configs', 'zeroshot_face_world_cpu.py'))


def _write_split(root, name, images, start=0, kps=None):
    """A 5-point COCO json over ``images`` (file names under ``root``)."""
    anns, ims = [], []
    for i, fn in enumerate(images):
        kp = kps[i] if kps is not None and kps[i] is not None else [
            v for p in ([20, 20], [40, 20], [30, 30], [22, 40], [38, 40])
            for v in (*p, 2)]
        ims.append(dict(id=start + i, file_name=fn, width=64, height=64))
        anns.append(dict(id=start + i, image_id=start + i, category_id=1,
                         keypoints=kp, num_keypoints=5,
                         bbox=[0, 0, 64, 64], iscrowd=0))
    data = dict(images=ims, annotations=anns,
                categories=[dict(id=1, name='face', keypoints=[
                    'a', 'b', 'c', 'd', 'e'])])
    path = osp.join(root, name)
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


@pytest.fixture
def world(tmp_path):
    """6 distinct images: 4 for training, 2 for testing."""
    rng = np.random.default_rng(0)
    names = []
    for i in range(6):
        fn = f'im{i}.png'
        cv2.imwrite(str(tmp_path / fn),
                    rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        names.append(fn)
    train = _write_split(str(tmp_path), 'train.json', names[:4])
    test = _write_split(str(tmp_path), 'test.json', names[4:], start=100)
    return dict(root=str(tmp_path), names=names, train=train, test=test)


def test_disjoint_splits_pass_and_leaks_are_refused(world):
    root = world['root']
    rep = check_splits(world['train'], world['test'], root)
    assert rep['train_images'] == 4 and rep['test_images'] == 2
    assert not rep['overlap']
    # the same file in both splits
    leak = _write_split(root, 'leak.json', world['names'][3:], start=100)
    with pytest.raises(DataCheckError, match='also training images'):
        check_splits(world['train'], leak, root)
    # identical pixels under another name (a copy)
    shutil.copy(osp.join(root, 'im0.png'), osp.join(root, 'copy.png'))
    cp = _write_split(root, 'copy.json', ['copy.png', 'im5.png'], start=100)
    with pytest.raises(DataCheckError, match=r'copy\.png \(= .*im0\.png\)'):
        check_splits(world['train'], cp, root)
    # allowed on request, and then reported
    notes = []
    rep = check_splits(world['train'], cp, root, allow_overlap=True,
                       warn=notes.append)
    assert len(rep['overlap']) == 1 and rep['allow_overlap']
    assert any('optimistic' in n for n in notes)
    # the training json as test json
    with pytest.raises(DataCheckError, match='is the training json'):
        check_splits(world['train'], world['train'], root)


def test_bad_data_is_refused_with_the_file_named(world):
    root = world['root']
    nan = [v for p in ([20, 20], [40, 20], [30, 30], [22, 40], [38, 40])
           for v in (*p, 2)]
    nan[3] = float('nan')
    bad = _write_split(root, 'nan.json', world['names'][4:], start=100,
                       kps=[nan, nan])
    with pytest.raises(DataCheckError, match='im4.png has NaN'):
        check_splits(world['train'], bad, root)
    empty = osp.join(root, 'empty.json')
    with open(empty, 'w') as f:
        json.dump(dict(images=[], annotations=[], categories=[]), f)
    with pytest.raises(DataCheckError, match='empty split'):
        check_splits(world['train'], empty, root)
    # a truncated test image: refused before training
    with open(osp.join(root, 'im5.png'), 'r+b') as f:
        f.truncate(30)
    with pytest.raises(DataCheckError, match='cannot read test image .*im5'):
        check_splits(world['train'], world['test'], root)


def test_dropped_duplicated_and_unreadable_are_listed(world):
    root = world['root']
    kp0 = [v for p in ([0, 0], ) * 5 for v in (*p, 0)]
    test = _write_split(root, 'test2.json', ['im4.png', 'im5.png'],
                        start=100, kps=[None, kp0])
    train = _write_split(root, 'train2.json', world['names'][:4] +
                         ['im0.png'])
    with open(osp.join(root, 'im1.png'), 'wb') as f:
        f.write(b'')
    notes = []
    rep = check_splits(train, test, root, warn=notes.append)
    assert len(rep['dropped']['test']) == 1
    assert rep['dropped']['test'][0].endswith('im5.png')
    assert len(rep['duplicates']['train']) == 1
    assert [osp.basename(p) for p in rep['unreadable_train']] == ['im1.png']
    assert len(notes) == 3
    # a test image listed twice would be scored against one listing's GT
    twice = _write_split(root, 'twice.json', ['im4.png', 'im5.png',
                                              'im5.png'], start=100)
    with pytest.raises(DataCheckError, match=r'lists 1 images more than '
                       r'once \(.*im5\.png'):
        check_splits(world['train'], twice, root)
    lines = learnability_run.data_notes(rep)
    assert any('1 test objects without a labelled point' in ln
               for ln in lines)


class _FakeRunner:
    """Writes the stage checkpoints and a clustering round like a run."""
    calls = 0
    fail_after_first = False

    def __init__(self, cfg):
        self.cfg = cfg

    @classmethod
    def from_cfg(cls, cfg):
        return cls(cfg)

    def train(self):
        _FakeRunner.calls += 1
        work = self.cfg.work_dir
        os.makedirs(osp.join(work, 'pseudo_labels'), exist_ok=True)
        tag = _FakeRunner.calls
        open(osp.join(work, 'pseudo_labels', f'round_{tag}.npz'),
             'w').close()
        for i, n in enumerate(('bootstrap', 'duld')):
            torch.save({'x': torch.zeros(1)},
                       osp.join(work, f'stage{i + 1}_{n}.pth'))
            if _FakeRunner.fail_after_first:
                raise KeyboardInterrupt('killed')


def test_stage_checkpoints_are_reused_only_when_made_from_the_same(
        world, tmp_path, monkeypatch, capsys):
    """A rerun reuses only checkpoints of the same config, data and code;
    another schedule, other data or an unfinished run trains again, and
    the earlier run's rounds are gone."""
    from mmengine.config import Config
    monkeypatch.setattr(learnability_run, 'Runner', _FakeRunner)
    _FakeRunner.calls = 0
    train_dir = str(tmp_path / 'w' / 'dldpp_train')
    ckpts = [osp.join(train_dir, 'stage1_bootstrap.pth'),
             osp.join(train_dir, 'stage2_duld.pth')]
    opts = _options(world, 'test.json', str(tmp_path / 'w'))
    train_or_reuse = learnability_run.train_or_reuse

    def cfg(iters):
        c = Config(dict(work_dir=train_dir, stages=[iters, 5],
                        visualizer=dict(name=f'v{np.random.rand()}')))
        return c

    def rounds():
        return sorted(os.listdir(osp.join(train_dir, 'pseudo_labels')))

    train_or_reuse(cfg(3), train_dir, ckpts, opts)
    assert _FakeRunner.calls == 1
    train_or_reuse(cfg(3), train_dir, ckpts, opts)
    assert _FakeRunner.calls == 1 and 'reusing' in capsys.readouterr().out
    train_or_reuse(cfg(4), train_dir, ckpts, opts)
    assert _FakeRunner.calls == 2 and rounds() == ['round_2.npz']
    assert 'its config differ' in capsys.readouterr().out
    # other data in the same files' place
    with open(world['train'], 'a') as f:
        f.write(' ')
    train_or_reuse(cfg(4), train_dir, ckpts, opts)
    assert _FakeRunner.calls == 3 and 'its data differ' in \
        capsys.readouterr().out
    # a run killed after its first stage, then rerun with the same inputs
    _FakeRunner.fail_after_first = True
    try:
        with pytest.raises(KeyboardInterrupt):
            train_or_reuse(cfg(5), train_dir, ckpts, opts)
    finally:
        _FakeRunner.fail_after_first = False
    train_or_reuse(cfg(5), train_dir, ckpts, opts)
    assert 'did not finish' in capsys.readouterr().out
    assert _FakeRunner.calls == 5 and rounds() == ['round_5.npz']


def test_leaked_test_set_stops_the_benchmark_before_training(
        world, tmp_path, monkeypatch):

    class NoTraining:
        @classmethod
        def from_cfg(cls, cfg):
            raise AssertionError('training started')

    monkeypatch.setattr(learnability_run, 'Runner', NoTraining)
    _write_split(world['root'], 'leak.json', world['names'][3:], start=100)
    with pytest.raises(DataCheckError, match='also training images'):
        learnability_run.run_learnability(
            _options(world, 'leak.json', str(tmp_path / 'w')))


def _cpu_model():
    from mmengine.config import Config

    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmuld'):
        return MODELS.build(Config.fromfile(CPU_CFG).model)


def test_foreign_checkpoints_are_refused(tmp_path):
    """Checkpoints of another config (same K), of other names, or of 1-D
    tensors stop init_model (demo, inferencer, export) with the file and
    the first offending keys; the model's own checkpoint loads."""
    from mmuld.apis import init_model
    from mmuld.utils import CheckpointFitError
    model = _cpu_model()
    own = tmp_path / 'own.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), own)
    assert init_model(CPU_CFG, str(own)) is not None
    other = tmp_path / 'other.pth'
    wider = {k: (torch.zeros(v.shape[0] * 2, *v.shape[1:])
                 if k.startswith('descriptor_head.final_layer') else v)
             for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=wider, meta={}), other)
    with pytest.raises(CheckpointFitError,
                       match=r'other\.pth .*of another shape '
                       r'\(descriptor_head\.final_layer'):
        init_model(CPU_CFG, str(other))
    renamed = tmp_path / 'renamed.pth'
    torch.save(dict(state_dict={'net.' + k: v for k, v in
                                model.state_dict().items()}, meta={}),
               renamed)
    with pytest.raises(CheckpointFitError, match=r'renamed\.pth .*missing'):
        init_model(CPU_CFG, str(renamed))
    flat = tmp_path / 'flat.pth'
    torch.save(dict(state_dict={'uld_centroids': torch.zeros(4),
                                'uld_pose_centroids': torch.zeros(3)}),
               flat)
    with pytest.raises(CheckpointFitError, match=r'flat\.pth'):
        init_model(CPU_CFG, str(flat))


def test_atomic_save_leaves_no_truncated_checkpoint(tmp_path):
    """A save that fails half-way (disk full) leaves neither a truncated
    file under the final name nor the partial file."""
    from mmuld.utils.checkpoint import save_checkpoint_atomic

    class Runner:
        work_dir = str(tmp_path)

        def __init__(self, fail):
            self.fail = fail

        def save_checkpoint(self, out_dir, filename):
            with open(osp.join(out_dir, filename), 'wb') as f:
                f.write(b'PK\x03\x04 partial')
                if self.fail:
                    raise OSError(28, 'No space left on device')
                f.write(b' rest')

    with pytest.raises(OSError, match='No space'):
        save_checkpoint_atomic(Runner(True), 'stage1_bootstrap.pth')
    assert os.listdir(tmp_path) == []
    path = save_checkpoint_atomic(Runner(False), 'stage1_bootstrap.pth')
    assert os.listdir(tmp_path) == ['stage1_bootstrap.pth']
    assert open(path, 'rb').read().endswith(b' rest')


def test_load_from_hook_refuses_a_foreign_state_dict():
    """tools/test.py and tools/train.py (load_from) register
    CheckpointCheckHook: mmengine calls it with the loaded checkpoint
    before copying it into the model."""
    from mmengine.config import Config

    from mmuld.engine.hooks import CheckpointCheckHook
    from mmuld.utils import CheckpointFitError
    model = _cpu_model()

    class FakeRunner:
        cfg = Config.fromfile(CPU_CFG)

    FakeRunner.model = model
    FakeRunner.cfg.load_from = 'work_dirs/x/other.pth'
    hook = CheckpointCheckHook(config_name='dldpp_face_world_cpu.py')
    hook.after_load_checkpoint(FakeRunner, dict(state_dict=model.state_dict()))
    with pytest.raises(CheckpointFitError,
                       match=r'work_dirs/x/other\.pth .*2 unexpected'):
        hook.after_load_checkpoint(FakeRunner, dict(state_dict=dict(
            model.state_dict(), **{'head.w': torch.zeros(1),
                                   'head.b': torch.zeros(1)})))


def test_zeroshot_gets_the_options_its_config_has():
    """``--cfg-options`` reach the ZeroShot config where it has the key's
    parent (e.g. the backbone), not where it has none."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'zeroshot_face_world_cpu.py'))
    options = {
        'model.backbone.out_stride': 8,
        'seed': 3,
        'train_dataloader.batch_size': 4,
        'model.no_such_part.x': 1,
    }
    assert learnability_run.options_for(cfg, options) == {
        'model.backbone.out_stride': 8,
        'seed': 3,
    }
