# Copyright (c) mmuld contributors. All rights reserved.
"""Does the method discover landmarks? Train, evaluate, compare.

One command trains D-ULD++ (its stage-2 checkpoint is D-ULD), runs
ZeroShot on the bootstrapped backbone (or, when its config sets
``zeroshot_from_bootstrap = False``, on its own config's backbone, e.g.
frozen diffusion features and a random aggregator), evaluates all three on
a COCO keypoint set of any object with N named points, and compares them
with two baselines that discover nothing: the mean training shape put on
every crop (forward NME) and K random points per crop. ``--supervised``
adds an upper bound: mmpose's top-down ResNet-18 + HeatmapHead trained
with the training ground truth. Every row gets the forward / backward NME,
the accuracy of every ground-truth part (a landmark within 0.2
normalisers), the worst part and the spread of the landmarks; the verdict
says "discovers landmarks" only when D-ULD++ beats the baselines by a wide
margin **and** finds every part.

    .venv/bin/python tools/analysis/learnability.py \\
        --data-root data/face_world --train-ann annotations/train.json \\
        --test-ann annotations/test.json --work-dir work_dirs/learnability

Writes ``WORK_DIR/learnability.json``, ``learnability.md`` (the table) and
``landmarks_grid.png`` (test crops, one colour per landmark id; rows: GT,
each method). The point names come from the json's category; the NME is
normalised by the distance of points ``--norm-points I J`` (default 0 1,
the eyes of MAFL-order faces and of the cat world), or with ``--norm bbox``
by ``sqrt(w * h)`` of the ground-truth points' box (the LS3D protocol,
for wide poses, where the turn shrinks the inter-ocular distance).
"""
import argparse
import copy
import json
import os
import os.path as osp
import shutil
import sys
import time

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.evaluation import learnability as L  # noqa: E402
from mmuld.evaluation import run_checks  # noqa: E402
from mmuld.utils import register_all_modules  # noqa: E402

METHODS = ('zeroshot', 'duld', 'dldpp')
NAMES = dict(zeroshot='ZeroShot', duld='D-ULD', dldpp='D-ULD++',
             supervised='supervised (upper bound)')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-root', required=True, help='image root')
    p.add_argument('--train-ann', required=True,
                   help='training json (relative to --data-root or absolute)')
    p.add_argument('--test-ann', required=True, help='test json')
    p.add_argument('--work-dir', required=True, help='output folder')
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=METHODS)
    p.add_argument('--config', default=osp.join(
        ROOT, 'configs/dldpp_face_world_cpu.py'),
        help='D-ULD++ config (D-ULD is its stage-2 checkpoint)')
    p.add_argument('--zeroshot-config', default=osp.join(
        ROOT, 'configs/zeroshot_face_world_cpu.py'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   default={}, help='overrides of --config (and of the '
                   'ZeroShot config where the key exists there)')
    p.add_argument('--stage-iters', type=int, nargs=4, default=None,
                   metavar=('BOOT', 'DULD', 'PROXY', 'DLDPP'),
                   help='iterations of the four stages (default: config)')
    p.add_argument('--cluster-interval', type=int, default=None,
                   help='iterations between clustering rounds')
    p.add_argument('--num-grid', type=int, default=8,
                   help='test images in the picture grid')
    p.add_argument('--norm-points', type=int, nargs=2, default=(0, 1),
                   metavar=('I', 'J'),
                   help='ground-truth points whose distance normalises the '
                   'NME and the part accuracy (default: 0 1, the eyes)')
    p.add_argument('--norm', choices=('points', 'bbox'), default='points',
                   help="normaliser: the distance of --norm-points, or "
                   "'bbox', sqrt(w * h) of the ground-truth points' box "
                   "(Mallis et al.'s LS3D protocol: it does not shrink "
                   'with the yaw)')
    p.add_argument('--supervised', action='store_true',
                   help='also train mmpose\'s top-down ResNet-18 + '
                   'HeatmapHead on the training ground truth and score it '
                   '(an upper bound; about 6 minutes on 2 CPU cores)')
    p.add_argument('--supervised-config', default=osp.join(
        ROOT, 'configs/supervised_face_world_cpu.py'))
    p.add_argument('--allow-overlap', action='store_true',
                   help='accept test images that are also training images '
                   '(refused by default; the report then says so)')
    return p.parse_args(argv)


def _abs(root, path):
    return path if osp.isabs(path) else osp.join(root, path)


def _set_data(cfg: Config, args) -> None:
    """Point every split of a config at the given data, and its evaluator
    at the normalising points."""
    def fix(ds, ann, split):
        ds['data_root'] = args.data_root
        ds['ann_file'] = ann
        ds['uld_split'] = split

    for ev in cfg.get('test_evaluator', []):
        if ev['type'] == 'RegressionNMEMetric':
            ev['norm_indices'] = tuple(args.norm_points)
            ev['norm_mode'] = 'bbox' if args.norm == 'bbox' \
                else 'interocular'

    if cfg.get('train_dataloader'):
        fix(cfg.train_dataloader.dataset, args.train_ann, 'train')
    for hook in cfg.get('custom_hooks', []):
        if hook.get('fit_dataloader'):
            fix(hook['fit_dataloader']['dataset'], args.train_ann, 'train')
    tr, te = cfg.test_dataloader.dataset.datasets
    fix(tr, args.train_ann, 'train')
    fix(te, args.test_ann, 'test')


def _options_for(cfg: Config, options: dict) -> dict:
    """The overrides whose top-level key is set in ``cfg`` (e.g. ZeroShot
    has no ``train_dataloader``) and whose path exists there."""
    out = {}
    tree = cfg.to_dict()
    for key, value in options.items():
        node = tree
        for part in key.split('.')[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            out[key] = value
    return out


def _own_visualizer(cfg: Config, tag: str) -> None:
    """mmengine reuses a visualizer of the same name created earlier in the
    process (with its save_dir): give each runner its own."""
    if cfg.get('visualizer'):
        cfg.visualizer.name = f'visualizer_{tag}_{time.time_ns()}'


def _evaluate(cfg: Config, checkpoint, work_dir: str) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    _own_visualizer(cfg, osp.basename(work_dir))
    cfg.load_from = checkpoint
    cfg.resume = False
    for ev in cfg.test_evaluator:
        if ev['type'] == 'LandmarkDumpMetric':
            ev['out_file'] = osp.join(work_dir, 'landmarks.json')
    runner = Runner.from_cfg(cfg)
    if checkpoint:
        from mmuld.engine.hooks import CheckpointCheckHook
        runner.register_hook(CheckpointCheckHook(checkpoint), 'VERY_HIGH')
    metrics = runner.test()
    return dict(metrics={k: float(v) for k, v in metrics.items()
                         if isinstance(v, (int, float))},
                landmarks=osp.join(work_dir, 'landmarks.json'))


def main(argv=None) -> dict:
    args = parse_args(argv)
    register_all_modules()
    work = osp.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    part_names = _part_names(args)
    print(f'{len(part_names)} points per object ({", ".join(part_names)}); '
          f'NME normalised by {_norm_text(args, part_names)}')
    data_checks = run_checks.check_splits(
        _abs(args.data_root, args.train_ann),
        _abs(args.data_root, args.test_ann), args.data_root,
        allow_overlap=args.allow_overlap,
        warn=lambda msg: print(f'warning: {msg}'))
    cfg = Config.fromfile(args.config)
    _set_data(cfg, args)
    cfg.merge_from_dict(args.cfg_options)
    _set_schedule(cfg, args.stage_iters, args.cluster_interval)
    stride = float(cfg.model.backbone.out_stride)
    train_dir = osp.join(work, 'dldpp_train')
    runs = {}
    timings = {}

    zcfg = None
    if 'zeroshot' in args.methods:
        zcfg = Config.fromfile(args.zeroshot_config)
        _set_data(zcfg, args)
        zcfg.merge_from_dict(_options_for(zcfg, args.cfg_options))
    # ZeroShot clusters the bootstrapped backbone's features, or (paper
    # Sec. 3.1, frozen SD features) those of its own config
    zeroshot_boot = zcfg is not None and zcfg.get('zeroshot_from_bootstrap',
                                                  True)
    trained = [m for m in args.methods if m != 'zeroshot' or zeroshot_boot]
    ckpts = {}
    if trained:
        tcfg = copy.deepcopy(cfg)
        tcfg.work_dir = train_dir
        _own_visualizer(tcfg, 'train')
        names = [s['name'] for s in tcfg.model.stages]
        want = {'zeroshot': 'bootstrap', 'duld': 'duld', 'dldpp': 'dldpp'}
        needed = [want[m] for m in trained]
        last = max(names.index(n) for n in needed)
        if last + 1 < len(names):
            _truncate_stages(tcfg, last + 1)
        for i, n in enumerate(names[:last + 1]):
            ckpts[n] = osp.join(train_dir, f'stage{i + 1}_{n}.pth')
        _train_or_reuse(tcfg, train_dir, list(ckpts.values()), args)
        timings['training_s'] = time.time() - t0

    for method in ('dldpp', 'duld'):
        if method in args.methods:
            t = time.time()
            runs[method] = _evaluate(cfg, ckpts[method],
                                     osp.join(work, f'eval_{method}'))
            timings[f'eval_{method}_s'] = time.time() - t
    if zcfg is not None:
        t = time.time()
        boot = ckpts.get('bootstrap') if zeroshot_boot else None
        runs['zeroshot'] = _evaluate(zcfg, boot,
                                     osp.join(work, 'eval_zeroshot'))
        timings['eval_zeroshot_s'] = time.time() - t
    if args.supervised:
        t = time.time()
        runs['supervised'] = _supervised(args, work, len(part_names))
        timings['supervised_s'] = time.time() - t

    # ---------------- scoring: one code path for all rows -------------- #
    gt = {}
    for ann in (args.train_ann, args.test_ann):
        gt.update(L.load_gt(_abs(args.data_root, ann), args.data_root))
    norm = tuple(args.norm_points) if args.norm == 'points' else 'bbox'
    results, grid_rows, arrays, train_arrays = {}, {}, {}, {}
    k = int(cfg.model.num_landmarks)
    band_of = None
    for method in METHODS + ('supervised', ):
        if method not in runs:
            continue
        entries = L.load_landmarks(runs[method]['landmarks'])
        tr = L.split_arrays(entries, gt, 'train')
        te = L.split_arrays(entries, gt, 'test')
        band = 2 * stride * (te['crop'][:, 2] - te['crop'][:, 0]) / \
            te['input_size'][:, 0]
        band_of = (tr, te, band)
        results[NAMES[method]] = dict(
            L.score(tr, te, band, norm, part_names),
            runner_metrics=runs[method]['metrics'])
        arrays[method] = te
        train_arrays[method] = tr
    if band_of is None:
        raise RuntimeError('no method was evaluated')
    tr, te, band = band_of
    results['mean shape (baseline)'] = dict(
        forward=L.mean_shape_baseline(tr, te, norm), backward=None,
        per_landmark_accuracy=None, border_fraction=None)
    results['random points (baseline)'] = L.random_points_baseline(
        tr, te, k, band, norm_indices=norm, names=part_names)
    grid_rows['ground truth'] = dict(te, pred=te['gt'],
                                     valid=np.ones(te['gt'].shape[:2], bool))
    for method in METHODS + ('supervised', ):
        if method in arrays:
            grid_rows[NAMES[method]] = arrays[method]
    grid = L.landmarks_grid(grid_rows, osp.join(work, 'landmarks_grid.png'),
                            num_images=args.num_grid)
    timings['total_s'] = time.time() - t0

    table = L.markdown_table(results, part_names)
    gt_border = L.border_fraction(te['gt'], np.ones(te['gt'].shape[:2], bool),
                                  te['crop'], band)
    verdict = L.verdict(results, gt_border=gt_border)
    # the training targets of every clustering round, against the ground
    # truth (bank rows follow the training split's dataset order, as the
    # landmarks file of the evaluation does)
    rounds = []
    folder = osp.join(train_dir, 'pseudo_labels')
    last = next((m for m in ('dldpp', 'duld') if m in runs), None)
    if last and osp.isdir(folder):
        rounds = L.pseudo_label_rounds(folder, train_arrays[last], norm,
                                       part_names)
    summary = dict(
        data_root=args.data_root, train_ann=args.train_ann,
        test_ann=args.test_ann, data_checks=data_checks,
        config=args.config,
        cfg_options=args.cfg_options, num_landmarks=k,
        part_names=part_names,
        norm_points=list(norm) if args.norm == 'points' else None,
        norm=args.norm,
        gt_border_fraction=gt_border,
        results=results, pseudo_label_rounds=rounds, timings_s=timings,
        verdict=verdict, picture=grid)
    with open(osp.join(work, 'learnability.json'), 'w') as f:
        json.dump(summary, f, indent=1, default=str)
    with open(osp.join(work, 'learnability.md'), 'w') as f:
        f.write(f'# Learnability on {args.data_root}\n\n'
                f'NME normalised by {_norm_text(args, part_names)}; '
                f'a part is hit when a landmark '
                f'is within {L.PART_HIT_THR} normalisers of it, found when '
                f'hit in '
                f'at least {100 * L.PART_FOUND_AT:.0f} % of the test images; '
                'spread: how far apart the landmarks are, relative to the '
                f'ground-truth points.\n\n{table}\n')
        if verdict:
            f.write(f'{verdict}\n')
        for line in _data_notes(data_checks):
            f.write(f'\n{line}\n')
        if rounds:
            f.write('\nTraining pseudo-labels of every clustering round '
                    'against the ground truth (training images, 2-fold):'
                    f'\n\n{L.rounds_table(rounds)}')
        f.write(f'\nPicture: {grid}\nWall time: {timings["total_s"]:.0f} s\n')
    if rounds:
        print('\ntraining pseudo-labels by clustering round (forward / '
              'backward NME %, worst part): ' + ', '.join(
                  f'{r["round"]}: {r["forward"]:.1f} / {r["backward"]:.1f}, '
                  f'{r["worst_part"]} {100 * r["worst_part_accuracy"]:.0f} %'
                  for r in rounds))
    print('\n' + table)
    for line in _data_notes(data_checks):
        print(line)
    if verdict:
        print(verdict)
    print(f'picture grid: {grid}')
    print(f'table: {osp.join(work, "learnability.md")}, '
          f'figures: {osp.join(work, "learnability.json")}')
    print(f'wall time: {timings["total_s"]:.0f} s')
    return summary


def _data_notes(checks: dict) -> list:
    """Report lines for what the data checks let through."""
    out = []
    if checks['overlap']:
        out.append(f'NOTE: {len(checks["overlap"])} of the '
                   f'{checks["test_images"]} test images are also training '
                   'images (--allow-overlap): the figures are optimistic.')
    for split in ('train', 'test'):
        if checks['dropped'][split]:
            out.append(f'NOTE: {len(checks["dropped"][split])} {split} '
                       'objects without a labelled point were not used.')
        if checks['duplicates'][split]:
            out.append(f'NOTE: {len(checks["duplicates"][split])} {split} '
                       'images are listed more than once.')
    if checks['unreadable_train']:
        out.append(f'NOTE: {len(checks["unreadable_train"])} training '
                   'images could not be read and were skipped.')
    return out


def _train_or_reuse(tcfg: Config, train_dir: str, ckpts: list,
                    args) -> None:
    """Train, or reuse the stage checkpoints of an earlier run made from
    the same config, data and code (``fingerprint.json``, written before
    training and marked finished after it). Anything else (another input,
    an unfinished run, a missing or truncated checkpoint) is trained again
    from scratch, after removing the earlier run's files, so that the
    report never mixes two runs."""
    from mmuld.utils import is_intact_checkpoint
    plain = tcfg.to_dict()
    plain.pop('work_dir', None)
    (plain.get('visualizer') or {}).pop('name', None)
    images = [osp.join(args.data_root, im['file_name']) for im in json.load(
        open(_abs(args.data_root, args.train_ann)))['images']]
    fp = run_checks.run_fingerprint(
        plain, [_abs(args.data_root, args.train_ann)], images,
        osp.join(ROOT, 'mmuld'))
    record = osp.join(train_dir, 'fingerprint.json')
    old = None
    if osp.isfile(record):
        try:
            with open(record) as f:
                old = json.load(f)
        except (OSError, json.JSONDecodeError):
            old = None
    differ = run_checks.fingerprint_mismatch(
        (old or {}).get('inputs'), fp)
    finished = bool(old and old.get('finished')) and all(
        is_intact_checkpoint(p) for p in ckpts)
    if finished and not differ:
        print(f'reusing the stage checkpoints in {train_dir}: same config, '
              'data and code')
        return
    if osp.isdir(train_dir) and os.listdir(train_dir):
        if differ == ['no record']:
            why = 'no record of what its files were made from'
        elif differ:
            why = f'its {" and ".join(differ)} differ'
        elif old and old.get('finished'):
            why = 'a stage checkpoint is missing or truncated'
        else:
            why = 'the earlier run did not finish'
        print(f'training again in {train_dir} ({why}); the earlier run\'s '
              'checkpoints and clustering rounds are removed')
        shutil.rmtree(train_dir)
    os.makedirs(train_dir, exist_ok=True)

    def write(finished: bool) -> None:
        with open(record + '.part', 'w') as f:
            json.dump(dict(inputs=fp, finished=finished), f, indent=1)
        os.replace(record + '.part', record)

    write(False)
    runner = Runner.from_cfg(tcfg)
    runner.train()
    del runner
    write(True)


def _norm_text(args, part_names: list) -> str:
    """What normalises the NME, in words."""
    if args.norm == 'bbox':
        return 'sqrt(w * h) of the ground-truth points\' box (--norm bbox)'
    i, j = args.norm_points
    return (f'the distance of {part_names[i]} and {part_names[j]} '
            f'(--norm-points {i} {j})')


def _part_names(args) -> list:
    """The ground-truth point names (train and test must agree) and a
    check of ``--norm-points``."""
    names = L.keypoint_names(_abs(args.data_root, args.train_ann))
    test = L.keypoint_names(_abs(args.data_root, args.test_ann))
    if len(test) != len(names):
        raise ValueError(f'{args.train_ann} has {len(names)} points per '
                         f'object, {args.test_ann} {len(test)}')
    i, j = args.norm_points
    if not (0 <= i < len(names) and 0 <= j < len(names)) or i == j:
        raise ValueError(f'--norm-points {i} {j}: need two different '
                         f'points of the {len(names)} ({names})')
    return names


def _supervised(args, work: str, num_points: int) -> dict:
    """Train mmpose's top-down heatmap model on the training ground truth
    and dump its landmarks like the other methods."""
    cfg = Config.fromfile(args.supervised_config)
    _set_data(cfg, args)
    cfg.num_keypoints = num_points
    cfg.model.head.out_channels = num_points
    work_dir = osp.join(work, 'supervised')
    cfg.work_dir = work_dir
    _own_visualizer(cfg, 'supervised')
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    del runner
    return _evaluate(cfg, ckpt, osp.join(work, 'eval_supervised'))


def _set_schedule(cfg: Config, iters, interval) -> None:
    """Stage lengths go to the model's stage table (the loop takes its
    length from there), the clustering interval to
    ``train_cfg.clustering``."""
    stages = cfg.model.stages
    if iters:
        if len(stages) != len(iters):
            raise ValueError(f'--stage-iters gives {len(iters)} values '
                             f'for {len(stages)} stages')
        for s, n in zip(stages, iters):
            if n < 1:
                raise ValueError(f'--stage-iters: stage {s["name"]} '
                                 f'needs >= 1 iteration, got {n}')
            s['iters'] = n
    if interval:
        cfg.train_cfg.setdefault('clustering', {})['interval'] = interval


def _truncate_stages(cfg: Config, n: int) -> None:
    """Keep the first ``n`` stages (e.g. only ZeroShot was asked for)."""
    cfg.model.stages = cfg.model.stages[:n]


if __name__ == '__main__':
    main()
