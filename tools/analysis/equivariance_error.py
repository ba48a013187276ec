# Copyright (c) mmuld contributors. All rights reserved.
"""Equivariance error of a landmark model under known rotations.

Needs no labels: every test image is compared with rotated copies of its
preprocessed input (see :mod:`mmuld.evaluation.equivariance_eval`).

Example::

    python tools/analysis/equivariance_error.py \
        configs/dldpp_face_samples_demo.py work_dirs/demo/iter_22.pth \
        --angles -30 -15 15 30 --split test --out equivariance.json
"""
import argparse
import copy
import json
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmuld.apis import dataset_leaves, init_model  # noqa: E402
from mmuld.evaluation.equivariance_eval import (  # noqa: E402
    evaluate_equivariance, format_equivariance_table)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Equivariance error under known rotations (no labels)')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--angles',
        type=float,
        nargs='+',
        default=[-30.0, -15.0, 15.0, 30.0],
        help='rotation angles in degrees (counter-clockwise positive)')
    parser.add_argument(
        '--flip', action='store_true', help='also evaluate a horizontal flip')
    parser.add_argument(
        '--split',
        default='test',
        help="keep samples with this `uld_split` ('all': every sample)")
    parser.add_argument(
        '--norm',
        choices=['input', 'bbox'],
        default='input',
        help='normaliser: sqrt(w*h) of the input crop or of the RoI box')
    parser.add_argument(
        '--max-images', type=int, default=None, help='stop after N images')
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', help='JSON file for the results')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    return parser.parse_args(argv)


def select_split(dataset_cfg: dict, split: str) -> dict:
    """Drop the leaves of a ``ConcatDataset`` that hold another split.

    Leaves without ``uld_split`` are kept (the samples are filtered one by
    one anyway).

    Args:
        dataset_cfg (dict): The test dataset config.
        split (str): The ``uld_split`` to keep.

    Returns:
        dict: A dataset config.
    """
    leaves = dataset_leaves(dataset_cfg)
    keep = [d for d in leaves if d.get('uld_split', split) == split]
    if not keep:
        raise ValueError(
            f'no dataset of the test dataloader has uld_split={split!r} '
            f"(found {[d.get('uld_split') for d in leaves]})")
    if len(keep) == 1:
        return copy.deepcopy(keep[0])
    return dict(type='ConcatDataset', datasets=copy.deepcopy(keep))


def build_dataloader(cfg, split, batch_size=None):
    """The config's test dataloader restricted to ``split``."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader = copy.deepcopy(cfg.get('test_dataloader') or {})
    if 'dataset' not in loader:
        raise ValueError('the config has no test_dataloader.dataset')
    if split is not None:
        loader['dataset'] = select_split(loader['dataset'], split)
    loader['sampler'] = dict(type='DefaultSampler', shuffle=False)
    loader['num_workers'] = 0
    loader['persistent_workers'] = False
    if batch_size:
        loader['batch_size'] = batch_size
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmuld')):
        return Runner.build_dataloader(loader)


def load_model(config, checkpoint, device='cpu', cfg_options=None):
    """``init_model``; a ZeroShot model also accepts the
    ``zeroshot_centroids.pth`` file written by ``ZeroShotFitHook``."""
    from mmuld.models import ZeroShotEstimator
    from mmuld.utils import load_checkpoint_file
    ckpt = None
    if checkpoint is not None and osp.isfile(checkpoint):
        # weights_only: a crafted checkpoint cannot run code
        ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
    if isinstance(ckpt, dict) and 'centroids' in ckpt and \
            'state_dict' not in ckpt:
        model = init_model(config, None, device, cfg_options)
        if not isinstance(model, ZeroShotEstimator):
            raise ValueError(f'{checkpoint} holds ZeroShot centroids but the '
                             f'config builds a {type(model).__name__}')
        model.set_centroids(ckpt['centroids'])
        return model.to(device)
    return init_model(config, checkpoint, device, cfg_options)


def main(argv=None) -> dict:
    args = parse_args(argv)
    split = None if args.split == 'all' else args.split
    model = load_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    loader = build_dataloader(model.cfg, split, args.batch_size)
    result = evaluate_equivariance(
        model,
        loader,
        angles=args.angles,
        flip=args.flip,
        device=args.device,
        split=split,
        norm=args.norm,
        max_images=args.max_images)
    result['config'] = args.config
    result['checkpoint'] = args.checkpoint
    print(format_equivariance_table(result))
    if args.out:
        out_dir = osp.dirname(osp.abspath(args.out))
        import mmengine
        mmengine.mkdir_or_exist(out_dir)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'results written to {args.out}')
    return result


if __name__ == '__main__':
    main()
