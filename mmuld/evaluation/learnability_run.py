# Copyright (c) mmuld contributors. All rights reserved.
"""The learnability benchmark: train, evaluate and compare.

:func:`run_learnability` trains D-ULD++ (its stage-2 checkpoint is
D-ULD), runs ZeroShot on the bootstrapped backbone (or, when its config
sets ``zeroshot_from_bootstrap = False``, on its own config's backbone),
optionally trains mmpose's supervised top-down model as an upper bound,
evaluates every method on a COCO keypoint set of N named points and
scores them and two baselines with the same code
(:mod:`mmuld.evaluation.learnability`). It writes ``learnability.json``,
``learnability.md`` and ``landmarks_grid.png`` to the work folder and
prints the table and the verdict. ``tools/analysis/learnability.py`` is
its command line.

Stage checkpoints are reused only when made from the same config, data
and code (:func:`train_or_reuse`, ``dldpp_train/fingerprint.json``).
"""
import copy
import json
import os
import os.path as osp
import shutil
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

import mmuld
from mmuld.engine.loops import stage_checkpoint_name
from mmuld.models.pose_estimators.stages import StageSchedule
from mmuld.models.utils.border import BORDER_CELLS
from mmuld.utils import register_all_modules
from . import learnability as L
from . import run_checks

#: The methods that learn without labels, in the order they are scored.
METHODS = ('zeroshot', 'duld', 'dldpp')
#: Row names of the methods in the table.
NAMES = dict(zeroshot='ZeroShot', duld='D-ULD', dldpp='D-ULD++',
             supervised='supervised (upper bound)')
#: The stage whose checkpoint a method is evaluated from.
METHOD_STAGES = dict(zeroshot='bootstrap', duld='duld', dldpp='dldpp')


@dataclass
class LearnabilityOptions:
    """What :func:`run_learnability` runs (the options of
    ``tools/analysis/learnability.py``, same names).

    Attributes:
        data_root (str): Image root.
        train_ann (str): Training json (relative to ``data_root`` or
            absolute).
        test_ann (str): Test json.
        work_dir (str): Output folder.
        config (str): D-ULD++ config (D-ULD is its stage-2 checkpoint).
        zeroshot_config (str, optional): ZeroShot config; needed when
            ``'zeroshot'`` is in ``methods``.
        supervised_config (str, optional): The supervised model's config;
            needed with ``supervised``.
        methods (Sequence[str]): Some of :data:`METHODS`.
        cfg_options (dict): Overrides of ``config`` (and of the ZeroShot
            config where the key exists there, :func:`options_for`).
        stage_iters (Sequence[int], optional): Iterations of every stage
            (default: the config's).
        cluster_interval (int, optional): Iterations between clustering
            rounds.
        num_grid (int): Test images in the picture grid.
        norm_points (Sequence[int]): The two ground-truth points whose
            distance normalises the NME and the part accuracy.
        norm (str): ``'points'`` (``norm_points``) or ``'bbox'`` (sqrt(w *
            h) of the ground-truth points' box).
        supervised (bool): Also train and score the supervised model.
        allow_overlap (bool): Accept test images that are also training
            images (the report then says so).
    """

    data_root: str
    train_ann: str
    test_ann: str
    work_dir: str
    config: str
    zeroshot_config: Optional[str] = None
    supervised_config: Optional[str] = None
    methods: Sequence[str] = METHODS
    cfg_options: dict = field(default_factory=dict)
    stage_iters: Optional[Sequence[int]] = None
    cluster_interval: Optional[int] = None
    num_grid: int = 8
    norm_points: Sequence[int] = (0, 1)
    norm: str = 'points'
    supervised: bool = False
    allow_overlap: bool = False


def _abs(root: str, path: str) -> str:
    """``path``, or ``root/path`` when it is relative."""
    return path if osp.isabs(path) else osp.join(root, path)


def set_data(cfg: Config, opts: LearnabilityOptions) -> None:
    """Point every split of a config at the given data, and its evaluator
    at the normaliser.

    Args:
        cfg (Config): A training or test config (changed in place): its
            training dataloader, the ``fit_dataloader`` of its hooks and
            the train / test datasets of its test dataloader.
        opts (LearnabilityOptions): ``data_root``, ``train_ann``,
            ``test_ann``, ``norm_points`` and ``norm``.
    """
    def fix(ds, ann, split):
        ds['data_root'] = opts.data_root
        ds['ann_file'] = ann
        ds['uld_split'] = split

    for ev in cfg.get('test_evaluator', []):
        if ev['type'] == 'RegressionNMEMetric':
            ev['norm_indices'] = tuple(opts.norm_points)
            ev['norm_mode'] = 'bbox' if opts.norm == 'bbox' \
                else 'interocular'

    if cfg.get('train_dataloader'):
        fix(cfg.train_dataloader.dataset, opts.train_ann, 'train')
    for hook in cfg.get('custom_hooks', []):
        if hook.get('fit_dataloader'):
            fix(hook['fit_dataloader']['dataset'], opts.train_ann, 'train')
    tr, te = cfg.test_dataloader.dataset.datasets
    fix(tr, opts.train_ann, 'train')
    fix(te, opts.test_ann, 'test')


def options_for(cfg: Config, options: dict) -> dict:
    """The overrides that apply to ``cfg``.

    Args:
        cfg (Config): A config (e.g. ZeroShot's, which has no
            ``train_dataloader``).
        options (dict): Dotted-key overrides.

    Returns:
        dict: The overrides whose parent path exists in ``cfg``.
    """
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


def own_visualizer(cfg: Config, tag: str) -> None:
    """Give the runner of ``cfg`` a visualizer of its own.

    mmengine reuses a visualizer of the same name created earlier in the
    process (with its save_dir).

    Args:
        cfg (Config): The config (changed in place).
        tag (str): Part of the new visualizer name.
    """
    if cfg.get('visualizer'):
        cfg.visualizer.name = f'visualizer_{tag}_{time.time_ns()}'


def evaluate_checkpoint(cfg: Config, checkpoint: Optional[str],
                        work_dir: str) -> dict:
    """Test a checkpoint with a config and dump its landmarks.

    Args:
        cfg (Config): The test config (not changed).
        checkpoint (str, optional): Weights to load (checked with
            :class:`CheckpointCheckHook`); None tests the config's own.
        work_dir (str): The runner's folder; ``landmarks.json`` goes there.

    Returns:
        dict: ``metrics`` (the runner's numeric metrics) and
        ``landmarks`` (the path of ``landmarks.json``).
    """
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    own_visualizer(cfg, osp.basename(work_dir))
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


def stage_checkpoints(cfg: Config, train_dir: str) -> Dict[str, str]:
    """The stage checkpoints a training run of ``cfg`` saves.

    Args:
        cfg (Config): A config with a stage table (``model.stages``).
        train_dir (str): The run's folder.

    Returns:
        dict[str, str]: Stage name -> checkpoint path, in stage order
        (:func:`~mmuld.engine.loops.stage_checkpoint_name`).
    """
    return {s.name: osp.join(train_dir, stage_checkpoint_name(s))
            for s in StageSchedule(cfg.model.stages)}


def border_band(test: dict, stride: float) -> np.ndarray:
    """Width of the crop-border band of each test image, in image pixels.

    Args:
        test (dict): :func:`~mmuld.evaluation.learnability.split_arrays`
            of the test split (``crop``, ``input_size``).
        stride (float): The backbone's output stride.

    Returns:
        np.ndarray: (M,) :data:`~mmuld.models.utils.border.BORDER_CELLS`
        map cells of the input, mapped to the crop.
    """
    return BORDER_CELLS * stride * (test['crop'][:, 2] - test['crop'][:, 0]) \
        / test['input_size'][:, 0]


def run_learnability(opts: LearnabilityOptions) -> dict:
    """Train, evaluate and score every method; write and print the report.

    Args:
        opts (LearnabilityOptions): What to run.

    Returns:
        dict: The summary written to ``learnability.json`` (data, config,
        ``results`` per method and baseline, ``pseudo_label_rounds``,
        ``timings_s``, ``verdict``, ``picture``).

    Raises:
        ValueError: Bad points or stage lengths, or no config for a
            requested method.
        DataCheckError: The data checks refuse the splits
            (:func:`~mmuld.evaluation.run_checks.check_splits`).
    """
    register_all_modules()
    work = osp.abspath(opts.work_dir)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    part_names = part_names_of(opts)
    print(f'{len(part_names)} points per object ({", ".join(part_names)}); '
          f'NME normalised by {norm_text(opts, part_names)}')
    data_checks = run_checks.check_splits(
        _abs(opts.data_root, opts.train_ann),
        _abs(opts.data_root, opts.test_ann), opts.data_root,
        allow_overlap=opts.allow_overlap,
        warn=lambda msg: print(f'warning: {msg}'))
    cfg = Config.fromfile(opts.config)
    set_data(cfg, opts)
    cfg.merge_from_dict(opts.cfg_options)
    set_schedule(cfg, opts.stage_iters, opts.cluster_interval)
    stride = float(cfg.model.backbone.out_stride)
    train_dir = osp.join(work, 'dldpp_train')
    runs = {}
    timings = {}

    zcfg = None
    if 'zeroshot' in opts.methods:
        if not opts.zeroshot_config:
            raise ValueError('ZeroShot needs zeroshot_config')
        zcfg = Config.fromfile(opts.zeroshot_config)
        set_data(zcfg, opts)
        zcfg.merge_from_dict(options_for(zcfg, opts.cfg_options))
    # ZeroShot clusters the bootstrapped backbone's features, or (paper
    # Sec. 3.1, frozen SD features) those of its own config
    zeroshot_boot = zcfg is not None and zcfg.get('zeroshot_from_bootstrap',
                                                  True)
    trained = [m for m in opts.methods if m != 'zeroshot' or zeroshot_boot]
    ckpts = {}
    if trained:
        tcfg = copy.deepcopy(cfg)
        tcfg.work_dir = train_dir
        own_visualizer(tcfg, 'train')
        names = StageSchedule(tcfg.model.stages).names
        last = max(names.index(METHOD_STAGES[m]) for m in trained)
        if last + 1 < len(names):
            truncate_stages(tcfg, last + 1)
        ckpts = stage_checkpoints(tcfg, train_dir)
        train_or_reuse(tcfg, train_dir, list(ckpts.values()), opts)
        timings['training_s'] = time.time() - t0

    for method in ('dldpp', 'duld'):
        if method in opts.methods:
            t = time.time()
            runs[method] = evaluate_checkpoint(
                cfg, ckpts[method], osp.join(work, f'eval_{method}'))
            timings[f'eval_{method}_s'] = time.time() - t
    if zcfg is not None:
        t = time.time()
        boot = ckpts.get('bootstrap') if zeroshot_boot else None
        runs['zeroshot'] = evaluate_checkpoint(
            zcfg, boot, osp.join(work, 'eval_zeroshot'))
        timings['eval_zeroshot_s'] = time.time() - t
    if opts.supervised:
        t = time.time()
        runs['supervised'] = train_supervised(opts, work, len(part_names))
        timings['supervised_s'] = time.time() - t

    # ---------------- scoring: one code path for all rows -------------- #
    gt = {}
    for ann in (opts.train_ann, opts.test_ann):
        gt.update(L.load_gt(_abs(opts.data_root, ann), opts.data_root))
    norm = tuple(opts.norm_points) if opts.norm == 'points' else 'bbox'
    results, grid_rows, arrays, train_arrays = {}, {}, {}, {}
    k = int(cfg.model.num_landmarks)
    band_of = None
    for method in METHODS + ('supervised', ):
        if method not in runs:
            continue
        entries = L.load_landmarks(runs[method]['landmarks'])
        tr = L.split_arrays(entries, gt, 'train')
        te = L.split_arrays(entries, gt, 'test')
        band = border_band(te, stride)
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
                            num_images=opts.num_grid)
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
        data_root=opts.data_root, train_ann=opts.train_ann,
        test_ann=opts.test_ann, data_checks=data_checks,
        config=opts.config,
        cfg_options=opts.cfg_options, num_landmarks=k,
        part_names=part_names,
        norm_points=list(norm) if opts.norm == 'points' else None,
        norm=opts.norm,
        gt_border_fraction=gt_border,
        results=results, pseudo_label_rounds=rounds, timings_s=timings,
        verdict=verdict, picture=grid)
    with open(osp.join(work, 'learnability.json'), 'w') as f:
        json.dump(summary, f, indent=1, default=str)
    with open(osp.join(work, 'learnability.md'), 'w') as f:
        f.write(f'# Learnability on {opts.data_root}\n\n'
                f'NME normalised by {norm_text(opts, part_names)}; '
                f'a part is hit when a landmark '
                f'is within {L.PART_HIT_THR} normalisers of it, found when '
                f'hit in '
                f'at least {100 * L.PART_FOUND_AT:.0f} % of the test images; '
                'spread: how far apart the landmarks are, relative to the '
                f'ground-truth points.\n\n{table}\n')
        if verdict:
            f.write(f'{verdict}\n')
        for line in data_notes(data_checks):
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
    for line in data_notes(data_checks):
        print(line)
    if verdict:
        print(verdict)
    print(f'picture grid: {grid}')
    print(f'table: {osp.join(work, "learnability.md")}, '
          f'figures: {osp.join(work, "learnability.json")}')
    print(f'wall time: {timings["total_s"]:.0f} s')
    return summary


def data_notes(checks: dict) -> List[str]:
    """Report lines for what the data checks let through.

    Args:
        checks (dict): The report of
            :func:`~mmuld.evaluation.run_checks.check_splits`.

    Returns:
        list[str]: One ``NOTE: ...`` line per kind of problem let through
        (overlap, dropped objects, duplicated or unreadable images).
    """
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


def train_or_reuse(tcfg: Config, train_dir: str, ckpts: Sequence[str],
                   opts: LearnabilityOptions) -> None:
    """Train, or reuse the stage checkpoints of an earlier run made from
    the same config, data and code.

    The run's inputs are recorded in ``fingerprint.json`` (written before
    training and marked finished after it). Anything else (another input,
    an unfinished run, a missing or truncated checkpoint) is trained again
    from scratch, after removing the earlier run's files, so that the
    report never mixes two runs.

    Args:
        tcfg (Config): The training config.
        train_dir (str): Its work folder.
        ckpts (Sequence[str]): The stage checkpoints the run must leave.
        opts (LearnabilityOptions): ``data_root`` and ``train_ann`` (the
            data of the fingerprint).
    """
    from mmuld.utils import is_intact_checkpoint
    plain = tcfg.to_dict()
    plain.pop('work_dir', None)
    (plain.get('visualizer') or {}).pop('name', None)
    images = [osp.join(opts.data_root, im['file_name']) for im in json.load(
        open(_abs(opts.data_root, opts.train_ann)))['images']]
    fp = run_checks.run_fingerprint(
        plain, [_abs(opts.data_root, opts.train_ann)], images,
        osp.dirname(osp.abspath(mmuld.__file__)))
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


def norm_text(opts: LearnabilityOptions, part_names: Sequence[str]) -> str:
    """What normalises the NME, in words.

    Args:
        opts (LearnabilityOptions): ``norm`` and ``norm_points``.
        part_names (Sequence[str]): The ground-truth point names.

    Returns:
        str: E.g. ``'the distance of left_eye and right_eye
        (--norm-points 0 1)'``.
    """
    if opts.norm == 'bbox':
        return 'sqrt(w * h) of the ground-truth points\' box (--norm bbox)'
    i, j = opts.norm_points
    return (f'the distance of {part_names[i]} and {part_names[j]} '
            f'(--norm-points {i} {j})')


def part_names_of(opts: LearnabilityOptions) -> List[str]:
    """The ground-truth point names, with a check of ``norm_points``.

    Args:
        opts (LearnabilityOptions): ``data_root``, ``train_ann``,
            ``test_ann`` and ``norm_points``.

    Returns:
        list[str]: The names of the training json's points.

    Raises:
        ValueError: Train and test have different numbers of points, or
            ``norm_points`` are not two different points of them.
    """
    names = L.keypoint_names(_abs(opts.data_root, opts.train_ann))
    test = L.keypoint_names(_abs(opts.data_root, opts.test_ann))
    if len(test) != len(names):
        raise ValueError(f'{opts.train_ann} has {len(names)} points per '
                         f'object, {opts.test_ann} {len(test)}')
    i, j = opts.norm_points
    if not (0 <= i < len(names) and 0 <= j < len(names)) or i == j:
        raise ValueError(f'--norm-points {i} {j}: need two different '
                         f'points of the {len(names)} ({names})')
    return names


def train_supervised(opts: LearnabilityOptions, work: str,
                     num_points: int) -> dict:
    """Train mmpose's top-down heatmap model on the training ground truth
    and dump its landmarks like the other methods.

    Args:
        opts (LearnabilityOptions): ``supervised_config`` and the data.
        work (str): The benchmark's folder (``supervised`` and
            ``eval_supervised`` go there).
        num_points (int): Ground-truth points per object.

    Returns:
        dict: :func:`evaluate_checkpoint` of the last checkpoint.
    """
    if not opts.supervised_config:
        raise ValueError('the supervised model needs supervised_config')
    cfg = Config.fromfile(opts.supervised_config)
    set_data(cfg, opts)
    cfg.num_keypoints = num_points
    cfg.model.head.out_channels = num_points
    work_dir = osp.join(work, 'supervised')
    cfg.work_dir = work_dir
    own_visualizer(cfg, 'supervised')
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = osp.join(work_dir, f'iter_{runner.train_loop.max_iters}.pth')
    del runner
    return evaluate_checkpoint(cfg, ckpt, osp.join(work, 'eval_supervised'))


def set_schedule(cfg: Config, iters: Optional[Sequence[int]],
                 interval: Optional[int]) -> None:
    """Set the stage lengths and the clustering interval of a config.

    Stage lengths go to the model's stage table (the loop takes its
    length from there), the clustering interval to
    ``train_cfg.clustering``.

    Args:
        cfg (Config): The training config (changed in place).
        iters (Sequence[int], optional): One length per stage.
        interval (int, optional): Iterations between clustering rounds.

    Raises:
        ValueError: Another number of lengths than stages, or a length
            below 1.
    """
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


def truncate_stages(cfg: Config, n: int) -> None:
    """Keep the first ``n`` stages of the table (e.g. only ZeroShot was
    asked for).

    Args:
        cfg (Config): The training config (changed in place).
        n (int): Stages kept.
    """
    cfg.model.stages = cfg.model.stages[:n]
