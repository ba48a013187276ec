# Copyright (c) mmuld contributors. All rights reserved.
"""Train an mmuld model (ZeroShot fitting, D-ULD, D-ULD++) with mmengine."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmuld.utils import register_all_modules


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a ULD model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='mixed precision: bf16 autocast of the trainable parts '
        '(AmpOptimWrapper; CUDA only; optim_wrapper.dtype overrides)')
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
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        assert optim_wrapper in ['OptimWrapper', 'AmpOptimWrapper'], \
            '`--amp` is not supported custom optimizer wrapper type ' \
            f'`{optim_wrapper}.'
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        # bf16 keeps fp32's range: the SD features and the large
        # reconstruction losses need no fp16 loss scaling tricks
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.resume == 'auto':
        # the newest intact checkpoint: a truncated last one (a run killed
        # while saving) falls back to the previous one
        from mmuld.utils import find_resumable_checkpoint
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
    return cfg


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
    if cfg.get('load_from') and not cfg.get('resume'):
        # a foreign checkpoint would load nothing (mmengine loads
        # non-strictly) and train from random weights
        from mmuld.engine.hooks import CheckpointCheckHook
        runner.register_hook(
            CheckpointCheckHook(cfg.load_from, args.config), 'VERY_HIGH')
    runner.train()


if __name__ == '__main__':
    main()
