# Copyright (c) mmuld contributors. All rights reserved.
"""The learnability benchmark: its scoring (mmuld.evaluation.learnability)
and its run (mmuld.evaluation.learnability_run, with a stand-in runner;
a real training run: tests/test_engine/test_learning.py)."""
import dataclasses
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmuld.engine.loops import stage_checkpoint_name
from mmuld.evaluation import learnability as L
from mmuld.evaluation import learnability_run as R
from mmuld.models.pose_estimators.stages import StageSchedule

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CPU_CFG = osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py')
ZEROSHOT_CFG = osp.join(ROOT, 'configs', 'zeroshot_face_world_cpu.py')


def _options(root, train, test, **kwargs):
    return R.LearnabilityOptions(
        data_root=str(root), train_ann=train, test_ann=test,
        work_dir=str(osp.join(root, 'w')), config=CPU_CFG,
        zeroshot_config=ZEROSHOT_CFG, **kwargs)


def test_scores_against_known_answers():
    """The scoring code gives the known answer on hand-made predictions."""
    rng = np.random.default_rng(0)
    n, m = 40, 10
    gt = rng.uniform(20, 100, (n + m, 5, 2))
    crop = np.tile([0., 0., 128., 128.], (n + m, 1))

    def split(pred, sl):
        return dict(pred=pred[sl], valid=np.ones(pred[sl].shape[:2], bool),
                    gt=gt[sl], crop=crop[sl], paths=[''] * len(gt[sl]))

    band = np.full(m, 8.0)
    # landmarks = the GT itself (plus a fixed offset): perfect discovery
    exact = np.concatenate([gt, gt + 3], 1)
    r = L.score(split(exact, slice(0, n)), split(exact, slice(n, None)),
                band)
    # only the ridge penalty of the protocol separates forward from 0
    assert r['forward'] < 0.5
    assert r['per_landmark_accuracy_mean'] == 1.0
    rand = L.random_points_baseline(split(exact, slice(0, n)),
                                    split(exact, slice(n, None)), 10, band)
    assert rand['forward'] > 10 * r['forward'] + 10
    assert rand['backward'] > 2 * r['backward']
    # points in the outer band are counted as border points
    edge = exact.copy()
    edge[n:, :5] = [2.0, 64.0]
    r = L.score(split(edge, slice(0, n)), split(edge, slice(n, None)), band)
    assert r['border_fraction'] == pytest.approx(0.5)
    # the mean shape of identical faces is exact
    same = np.repeat(gt[:1], n + m, 0)
    tr = dict(gt=same[:n], crop=crop[:n])
    te = dict(gt=same[n:], crop=crop[n:])
    assert L.mean_shape_baseline(tr, te) == pytest.approx(0.0, abs=1e-9)


def test_pseudo_label_rounds_against_known_answers(tmp_path):
    """A round whose pseudo-labels are the ground truth (in input pixels of
    a crop that is not the whole image) scores near 0; random ones score
    like random points; a bank of another size is refused."""
    rng = np.random.default_rng(1)
    n = 60
    gt = rng.uniform(40, 90, (n, 5, 2))
    # a different crop box (offset and size) per image
    x0 = rng.uniform(0, 30, (n, 2))
    side = rng.uniform(100, 140, (n, 1))
    crop = np.concatenate([x0, x0 + side], 1)
    train = dict(gt=gt, crop=crop, input_size=np.tile([64., 64.], (n, 1)),
                 pred=gt, valid=np.ones((n, 5), bool), paths=[''] * n)
    # image -> input pixels of the crop (mmpose's top-down mapping)
    exact = (gt - crop[:, None, :2]) / side[:, None] * 64.
    kpts = np.concatenate([exact, exact + 1.0], 1)  # K = 10
    valid = np.ones((n, 10), bool)
    valid[::7, 3] = False
    np.savez(tmp_path / 'round_001_iter_100.npz', keypoints=kpts,
             valid=valid, labels=np.zeros((n, 10)), round=1, iteration=100)
    json.dump(dict(stage='duld'), open(tmp_path / 'round_001_iter_100.json',
                                       'w'))
    np.savez(tmp_path / 'round_002_iter_200.npz',
             keypoints=rng.uniform(0, 64, (n, 10, 2)), valid=valid,
             labels=np.zeros((n, 10)), round=2, iteration=200)
    rounds = L.pseudo_label_rounds(str(tmp_path), train)
    assert [r['round'] for r in rounds] == [1, 2]
    assert rounds[0]['stage'] == 'duld' and rounds[1]['stage'] is None
    assert rounds[0]['valid'] == pytest.approx(valid.mean())
    assert rounds[0]['forward'] < 1.0
    assert rounds[1]['forward'] > 10 * rounds[0]['forward'] + 10
    assert '| 1 | 100 | duld |' in L.rounds_table(rounds)
    small = dict(train, gt=gt[:10], crop=crop[:10],
                 input_size=train['input_size'][:10])
    with pytest.raises(ValueError, match='training split 10'):
        L.pseudo_label_rounds(str(tmp_path), small)


def test_mean_shape_baseline_uses_the_training_shapes_only():
    """Training and test shapes differ (the test faces sit lower in their
    crops): the baseline predicts the training mean, so its error is the
    offset between the two means, not 0."""
    rng = np.random.default_rng(3)
    base = np.array([[40., 50.], [80., 50.], [60., 70.], [45., 90.],
                     [75., 90.]])
    crop = np.tile([0., 0., 128., 128.], (20, 1))
    train = dict(gt=base + rng.normal(0, 0.5, (20, 5, 2)), crop=crop)
    test = dict(gt=base + [0., 8.] + rng.normal(0, 0.5, (20, 5, 2)),
                crop=crop)
    # inter-ocular distance 40 px, offset 8 px: about 20 %
    assert L.mean_shape_baseline(train, test) == pytest.approx(20.0, abs=2)
    same = dict(gt=test['gt'], crop=crop)
    assert L.mean_shape_baseline(same, test) < 2.0


def test_any_number_of_named_points(tmp_path):
    """A 3-point json: names from its category, scores over 3 parts, the
    normaliser from chosen points; a json without names gets point_i."""
    pts = np.array([[30., 40.], [70., 40.], [50., 80.]])
    ann = dict(
        images=[dict(id=1, file_name='a.png', width=128, height=128)],
        annotations=[dict(id=1, image_id=1, category_id=1,
                          keypoints=[v for p in pts for v in (*p, 2)],
                          bbox=[0, 0, 128, 128], num_keypoints=3)],
        categories=[dict(id=1, name='lamp',
                         keypoints=['base', 'joint', 'tip'])])
    path = tmp_path / 'three.json'
    path.write_text(json.dumps(ann))
    assert L.keypoint_names(str(path)) == ['base', 'joint', 'tip']
    ann['categories'][0].pop('keypoints')
    (tmp_path / 'bare.json').write_text(json.dumps(ann))
    assert L.keypoint_names(str(tmp_path / 'bare.json')) == [
        'point_0', 'point_1', 'point_2']
    rng = np.random.default_rng(0)
    n = 30
    gt = pts + rng.normal(0, 3, (n, 3, 2))
    crop = np.tile([0., 0., 128., 128.], (n, 1))
    arr = dict(gt=gt, crop=crop, pred=gt + 1.0, valid=np.ones((n, 3), bool),
               input_size=np.tile([64., 64.], (n, 1)))
    names = ['base', 'joint', 'tip']
    r = L.score(arr, arr, np.full(n, 8.0), norm_indices=(0, 2), names=names)
    assert list(r['part_accuracy']) == names and r['all_parts_found']
    table = L.markdown_table({'m': r}, names)
    assert '| base acc. | joint acc. | tip acc. |' in table
    # the benchmark reads the names and refuses normalising points it lacks
    opts = _options(tmp_path, 'three.json', 'three.json', norm_points=(0, 2))
    assert R.part_names_of(opts) == names
    opts.norm_points = (0, 3)
    with pytest.raises(ValueError, match='--norm-points 0 3'):
        R.part_names_of(opts)
    opts.norm_points = (0, 2)
    assert R.norm_text(opts, names) == \
        'the distance of base and tip (--norm-points 0 2)'
    assert R.norm_text(_options(tmp_path, 'three.json', 'three.json',
                                norm='bbox'), names).startswith('sqrt(w * h)')


def test_box_normaliser_does_not_shrink_with_the_yaw():
    """``'bbox'``: sqrt(w * h) of the GT box. A face turned so that its
    eyes are 4 px apart: a landmark 2 px off the nose misses at 0.2
    inter-ocular distances and hits at 0.2 box sizes."""
    n = 20
    # eyes 4 px apart (a wide yaw), nose and mouth below: box 10 x 25
    pts = np.array([[50., 40.], [54., 40.], [60., 52.], [51., 65.],
                    [55., 65.]])
    gt = np.tile(pts, (n, 1, 1))
    assert np.allclose(L.normaliser(gt, 'bbox'), np.sqrt(10 * 25))
    assert np.allclose(L.normaliser(gt, (0, 1)), 4.0)
    with pytest.raises(ValueError, match="'bbox'"):
        L.normaliser(gt, 'box')
    pred = gt + np.array([2.0, 0.0])
    crop = np.tile([0., 0., 128., 128.], (n, 1))
    arr = dict(gt=gt, crop=crop, pred=pred, valid=np.ones((n, 5), bool),
               input_size=np.tile([64., 64.], (n, 1)))
    names = ['le', 're', 'n', 'lm', 'rm']
    iod = L.score(arr, arr, np.full(n, 8.0), (0, 1), names)
    box = L.score(arr, arr, np.full(n, 8.0), 'bbox', names)
    assert max(iod['per_landmark_accuracy']) == 0.0
    assert min(box['per_landmark_accuracy']) == 1.0
    # the mean-shape baseline's NME scales with the normaliser
    ratio = L.mean_shape_baseline(arr, dict(arr, gt=gt + 1.0), (0, 1)) / \
        L.mean_shape_baseline(arr, dict(arr, gt=gt + 1.0), 'bbox')
    assert np.isclose(ratio, np.sqrt(250) / 4.0)


def test_verdict_needs_every_part():
    base = {'mean shape (baseline)': dict(forward=40.0),
            'random points (baseline)': dict(forward=41.0)}
    good = dict(forward=8.0, border_fraction=0.0, all_parts_found=True,
                parts_found=5, num_parts=5, worst_part='nose',
                worst_part_accuracy=0.7, spread=1.0)
    assert L.verdict({**base, 'D-ULD++': good}).endswith(
        'discovers landmarks')
    bunched = dict(good, all_parts_found=False, parts_found=3,
                   worst_part='left_mouth', worst_part_accuracy=0.05)
    v = L.verdict({**base, 'D-ULD++': bunched})
    assert 'NOT discovered' in v and 'finds 3 of 5 parts' in v
    # landmarks at the border are fine where the parts are there
    edge = dict(good, border_fraction=0.2)
    assert 'NOT' in L.verdict({**base, 'D-ULD++': edge})
    assert 'NOT' not in L.verdict({**base, 'D-ULD++': edge}, gt_border=0.2)


def test_tool_parses_and_calls_the_package():
    """The command line's options are :class:`LearnabilityOptions` (same
    names, same defaults where the package has one)."""
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    import learnability as tool
    args = tool.parse_args(['--data-root', 'd', '--train-ann', 'a.json',
                            '--test-ann', 'b.json', '--work-dir', 'w'])
    fields = {f.name: f for f in dataclasses.fields(R.LearnabilityOptions)}
    # --seeds chooses between one run and one per seed
    assert set(vars(args)) == set(fields) | {'seeds'}
    assert args.seeds is None
    for name, f in fields.items():
        if f.default is dataclasses.MISSING or f.default is None:
            continue
        value = getattr(args, name)
        if isinstance(f.default, tuple):
            value = tuple(value)
        assert value == f.default, name
    assert args.cfg_options == {} and args.config == CPU_CFG
    assert args.zeroshot_config == ZEROSHOT_CFG
    assert osp.isfile(args.supervised_config)
    assert tool.run_learnability is R.run_learnability


def test_schedule_truncation_and_stage_checkpoints(tmp_path):
    """Stage lengths go to the stage table, the clustering interval to the
    loop; the checkpoint names are the loop's, of the stages kept."""
    cfg = Config.fromfile(CPU_CFG)
    R.set_schedule(cfg, [3, 4, 5, 6], 2)
    assert [s['iters'] for s in cfg.model.stages] == [3, 4, 5, 6]
    assert cfg.train_cfg.clustering.interval == 2
    with pytest.raises(ValueError, match='gives 3 values for 4 stages'):
        R.set_schedule(cfg, [1, 2, 3], None)
    with pytest.raises(ValueError, match='stage duld needs >= 1'):
        R.set_schedule(cfg, [1, 0, 1, 1], None)
    train_dir = str(tmp_path)
    ckpts = R.stage_checkpoints(cfg, train_dir)
    assert list(ckpts) == ['bootstrap', 'duld', 'proxy', 'dldpp']
    assert ckpts['dldpp'] == osp.join(train_dir, 'stage4_dldpp.pth')
    # the names ULDTrainLoop saves at the end of each stage
    for stage in StageSchedule(cfg.model.stages):
        assert ckpts[stage.name] == osp.join(
            train_dir, stage_checkpoint_name(stage))
    R.truncate_stages(cfg, 2)
    assert [s['name'] for s in cfg.model.stages] == ['bootstrap', 'duld']
    assert list(R.stage_checkpoints(cfg, train_dir).values()) == [
        osp.join(train_dir, 'stage1_bootstrap.pth'),
        osp.join(train_dir, 'stage2_duld.pth')]


def test_set_data_points_every_split_at_the_data(tmp_path):
    opts = _options(tmp_path, 'tr.json', 'te.json', norm='bbox',
                    norm_points=(2, 3))
    cfg = Config.fromfile(CPU_CFG)
    R.set_data(cfg, opts)
    tr, te = cfg.test_dataloader.dataset.datasets
    for ds, ann, split in ((cfg.train_dataloader.dataset, 'tr.json',
                            'train'), (tr, 'tr.json', 'train'),
                           (te, 'te.json', 'test')):
        assert (ds.data_root, ds.ann_file, ds.uld_split) == (
            str(tmp_path), ann, split)
    nme = [ev for ev in cfg.test_evaluator
           if ev['type'] == 'RegressionNMEMetric'][0]
    assert nme['norm_indices'] == (2, 3) and nme['norm_mode'] == 'bbox'
    # ZeroShot: the hooks' fit dataloader too, no training dataloader
    zcfg = Config.fromfile(ZEROSHOT_CFG)
    R.set_data(zcfg, opts)
    fits = [h['fit_dataloader']['dataset'] for h in zcfg.custom_hooks
            if h.get('fit_dataloader')]
    assert fits and all(d['ann_file'] == 'tr.json' for d in fits)
    # every runner gets a visualizer of its own
    R.own_visualizer(cfg, 'a')
    first = cfg.visualizer.name
    R.own_visualizer(cfg, 'a')
    assert first.startswith('visualizer_a_') and cfg.visualizer.name != first


def test_border_band_is_two_map_cells_in_image_pixels():
    test = dict(crop=np.array([[0., 0., 128., 128.], [10., 0., 74., 64.]]),
                input_size=np.array([[64., 64.], [64., 64.]]))
    # stride 4: 8 input pixels, 16 image pixels of a 128 px crop
    assert np.allclose(R.border_band(test, 4.0), [16.0, 8.0])


class _FakeRunner:
    """Stands in for mmengine's Runner: training writes the stage
    checkpoints of the config's table; testing writes a landmarks file
    (the ground truth for D-ULD++, shifted points for the others)."""
    trained = []
    tested = []

    def __init__(self, cfg):
        self.cfg = cfg

    @classmethod
    def from_cfg(cls, cfg):
        return cls(cfg)

    def register_hook(self, hook, priority=None):
        assert type(hook).__name__ == 'CheckpointCheckHook'

    def train(self):
        _FakeRunner.trained.append(
            [s['name'] for s in self.cfg.model.stages])
        for stage in StageSchedule(self.cfg.model.stages):
            torch.save({'w': torch.zeros(1)}, osp.join(
                self.cfg.work_dir, stage_checkpoint_name(stage)))

    def test(self):
        cfg = self.cfg
        name = osp.basename(cfg.work_dir)
        _FakeRunner.tested.append((name, cfg.load_from))
        shift = 0. if name == 'eval_dldpp' else 6.
        k = int(cfg.model.num_landmarks)
        out = [ev['out_file'] for ev in cfg.test_evaluator
               if ev['type'] == 'LandmarkDumpMetric'][0]
        images = []
        for ds in cfg.test_dataloader.dataset.datasets:
            with open(osp.join(ds['data_root'], ds['ann_file'])) as f:
                data = json.load(f)
            ims = {im['id']: im for im in data['images']}
            for ann in data['annotations']:
                im = ims[ann['image_id']]
                kp = np.asarray(ann['keypoints'], float).reshape(-1, 3)
                pred = np.concatenate([kp[:, :2], kp[:, :2] + 1.])[:k]
                images.append(dict(
                    img_path=osp.join(ds['data_root'], im['file_name']),
                    uld_split=ds['uld_split'],
                    crop=[0., 0., float(im['width']), float(im['height'])],
                    input_size=[64, 64],
                    keypoints=(pred + shift).tolist(), visible=[1] * k))
        os.makedirs(cfg.work_dir, exist_ok=True)
        with open(out, 'w') as f:
            json.dump(dict(format='mmuld.landmarks.v1', images=images), f)
        return {'nme': 1.0, 'note': 'not a number'}


def test_run_writes_the_report_and_reuses_its_training(
        tmp_path, monkeypatch, capsys):
    """The whole benchmark around a stand-in runner: the methods are
    evaluated from the right stage checkpoints, scored against the
    baselines, and the table, figures and picture are written; a rerun
    with the same inputs reuses the training; ZeroShot alone trains only
    the bootstrapping stage."""
    from mmuld.datasets.synthetic_faces import (FaceWorldConfig,
                                                make_face_world)
    data = tmp_path / 'world'
    make_face_world(str(data), num_train=24, num_test=8, seed=3,
                    cfg=FaceWorldConfig(image_size=64))
    monkeypatch.setattr(R, 'Runner', _FakeRunner)
    _FakeRunner.trained, _FakeRunner.tested = [], []
    opts = R.LearnabilityOptions(
        data_root=str(data), train_ann='annotations/train.json',
        test_ann='annotations/test.json', work_dir=str(tmp_path / 'w'),
        config=CPU_CFG, zeroshot_config=ZEROSHOT_CFG, num_grid=3,
        stage_iters=[2, 2, 2, 2])
    summary = R.run_learnability(opts)
    out = capsys.readouterr().out
    work = str(tmp_path / 'w')
    train_dir = osp.join(work, 'dldpp_train')
    assert _FakeRunner.trained == [['bootstrap', 'duld', 'proxy', 'dldpp']]
    assert _FakeRunner.tested == [
        ('eval_dldpp', osp.join(train_dir, 'stage4_dldpp.pth')),
        ('eval_duld', osp.join(train_dir, 'stage2_duld.pth')),
        ('eval_zeroshot', osp.join(train_dir, 'stage1_bootstrap.pth'))]
    res = summary['results']
    assert list(res) == ['ZeroShot', 'D-ULD', 'D-ULD++',
                         'mean shape (baseline)',
                         'random points (baseline)']
    assert res['D-ULD++']['runner_metrics'] == {'nme': 1.0}
    # D-ULD++'s landmarks are the ground truth: every part found
    assert res['D-ULD++']['all_parts_found']
    assert res['D-ULD++']['forward'] < 0.2 * res['mean shape (baseline)'][
        'forward']
    assert res['D-ULD++']['forward'] < res['random points (baseline)'][
        'forward']
    # 6 px off: the part accuracy drops
    assert res['D-ULD']['per_landmark_accuracy_mean'] < \
        res['D-ULD++']['per_landmark_accuracy_mean']
    assert summary['verdict'].startswith('D-ULD++: forward NME')
    assert summary['verdict'].endswith('-> discovers landmarks')
    with open(osp.join(work, 'learnability.json')) as f:
        assert json.load(f)['results'].keys() == res.keys()
    table = open(osp.join(work, 'learnability.md')).read()
    assert table.startswith(f'# Learnability on {data}\n')
    assert L.markdown_table(res, summary['part_names']) in table
    img = cv2.imread(osp.join(work, 'landmarks_grid.png'))
    assert img.shape[:2] == (4 * 128, 110 + 3 * 128)  # GT + 3 methods
    assert out.startswith('5 points per object (')
    assert f'picture grid: {osp.join(work, "landmarks_grid.png")}' in out
    # the same inputs again: the stage checkpoints are reused
    R.run_learnability(opts)
    assert 'reusing the stage checkpoints' in capsys.readouterr().out
    assert len(_FakeRunner.trained) == 1
    # ZeroShot alone needs the bootstrapping stage only
    solo = dataclasses.replace(opts, methods=['zeroshot'],
                               work_dir=str(tmp_path / 'zs'))
    summary = R.run_learnability(solo)
    assert _FakeRunner.trained[-1] == ['bootstrap']
    assert _FakeRunner.tested[-1] == ('eval_zeroshot', osp.join(
        str(tmp_path / 'zs'), 'dldpp_train', 'stage1_bootstrap.pth'))
    assert 'D-ULD++' not in summary['results']


def test_seeds_run_the_benchmark_once_per_seed(tmp_path, monkeypatch):
    """``--seeds``: one benchmark per training seed, each with the seed in
    its config and its own folder, and the summary of all of them."""
    from mmuld.datasets.synthetic_faces import (FaceWorldConfig,
                                                make_face_world)
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    import learnability as tool
    data = tmp_path / 'world'
    make_face_world(str(data), num_train=24, num_test=8, seed=3,
                    cfg=FaceWorldConfig(image_size=64))
    monkeypatch.setattr(R, 'Runner', _FakeRunner)
    _FakeRunner.trained, _FakeRunner.tested = [], []
    seen = []
    build = _FakeRunner.from_cfg.__func__
    monkeypatch.setattr(
        _FakeRunner, 'from_cfg', classmethod(
            lambda cls, cfg: seen.append(
                (osp.basename(cfg.work_dir), cfg.randomness.seed,
                 cfg.model.num_landmarks)) or build(cls, cfg)))
    work = str(tmp_path / 'w')
    summary = tool.main([
        '--data-root', str(data), '--train-ann', 'annotations/train.json',
        '--test-ann', 'annotations/test.json', '--work-dir', work,
        '--methods', 'dldpp', '--stage-iters', '2', '2', '2', '2',
        '--num-grid', '2', '--cfg-options', 'model.num_landmarks=6',
        '--seeds', '4', '7'
    ])
    # training and evaluation of each seed carry that seed, and the other
    # options too
    assert [s[1:] for s in seen] == [(4, 6)] * 2 + [(7, 6)] * 2
    assert summary['seeds'] == [4, 7]
    for seed in (4, 7):
        assert summary['runs'][seed] == osp.join(work, f'seed_{seed}')
        assert osp.isfile(osp.join(work, f'seed_{seed}',
                                   'learnability.json'))
    dldpp = summary['methods']['D-ULD++']
    # the stand-in's landmarks are the ground truth in both runs
    assert dldpp['all_parts_found'] == 2 and summary['discovered'] == 2
    with open(osp.join(work, 'seeds.json')) as f:
        assert json.load(f)['seeds'] == [4, 7]
    assert '| D-ULD++ |' in open(osp.join(work, 'seeds.md')).read()
