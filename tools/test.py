# Copyright (c) mmuld contributors. All rights reserved.
"""Evaluate an mmuld model: forward/backward NME, CED, visualisations."""
import argparse
import os
import os.path as osp

import mmengine
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmuld.utils import register_all_modules


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', nargs='?', default=None, help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the directory to save evaluation results')
    parser.add_argument(
        '--out', help='the file to save the metric results (json/pkl/yaml)')
    parser.add_argument(
        '--dump', help='the file to dump all predictions (pkl)')
    parser.add_argument(
        '--show-dir',
        help='directory (inside the work dir) where images with the '
        'discovered landmarks are saved')
    parser.add_argument(
        '--show', action='store_true', help='display the results')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge CLI arguments to config."""
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint if args.checkpoint else cfg.get(
        'load_from', None)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.show or args.show_dir:
        vis = cfg.default_hooks.get('visualization', None)
        if vis is None:
            vis = dict(type='mmpose.PoseVisualizationHook')
            cfg.default_hooks.visualization = vis
        vis.enable = True
        vis.show = args.show
        if args.show:
            vis.wait_time = 1
        if args.show_dir:
            vis.out_dir = args.show_dir
        vis.interval = 1

    if args.dump is not None:
        assert args.dump.endswith(('.pkl', '.pickle')), \
            'The dump file must be a pkl file.'
        dump_metric = dict(type='DumpResults', out_file_path=args.dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = [*cfg.test_evaluator, dump_metric]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


class _SaveMetricsHook(Hook):
    """Write the final metrics to ``--out``."""

    def __init__(self, out: str) -> None:
        self.out = out

    def after_test_epoch(self, runner, metrics=None) -> None:
        if metrics is not None:
            mmengine.mkdir_or_exist(osp.dirname(osp.abspath(self.out)))
            mmengine.dump(
                {k: (v.tolist() if hasattr(v, 'tolist') else v)
                 for k, v in metrics.items()}, self.out)


def main() -> None:
    args = parse_args()
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        from mmuld.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    if cfg.get('load_from'):
        from mmuld.engine.hooks import CheckpointCheckHook
        runner.register_hook(
            CheckpointCheckHook(cfg.load_from, args.config), 'VERY_HIGH')
    if args.out:
        runner.register_hook(_SaveMetricsHook(args.out), 'LOWEST')
    runner.test()


if __name__ == '__main__':
    main()
