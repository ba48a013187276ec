# Copyright (c) mmuld contributors. All rights reserved.
"""Equivariance error of a config + checkpoint (the library side of
``tools/analysis/equivariance_error.py``).

The measurement itself is :func:`mmuld.evaluation.evaluate_equivariance`;
this module builds what it needs from files: the model (any mmuld
checkpoint, or the ``zeroshot_centroids.pth`` of ``ZeroShotFitHook``) and
the config's test dataloader restricted to one ``uld_split``.
"""
import copy
import json
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
from mmengine.config import Config

from mmuld.evaluation.equivariance_eval import (evaluate_equivariance,
                                                format_equivariance_table)
from .inference import dataset_leaves, init_model


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


def build_split_dataloader(cfg: Config,
                           split: Optional[str],
                           batch_size: Optional[int] = None):
    """The config's test dataloader restricted to ``split``.

    Args:
        cfg (Config): The model config (``model.cfg`` of ``init_model``).
        split (str, optional): ``uld_split`` to keep; None keeps all.
        batch_size (int, optional): Overrides the config's batch size.

    Returns:
        DataLoader: Unshuffled, single-process loader.
    """
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


def load_landmark_model(config: str,
                        checkpoint: Optional[str],
                        device: str = 'cpu',
                        cfg_options: Optional[dict] = None
                        ) -> torch.nn.Module:
    """``init_model``; a ZeroShot model also accepts the
    ``zeroshot_centroids.pth`` file written by ``ZeroShotFitHook``.

    Args:
        config (str): Config file.
        checkpoint (str, optional): Checkpoint file (loaded with
            ``weights_only=True``).
        device (str): Device of the model.
        cfg_options (dict, optional): Config overrides.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` attached.
    """
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


def checkpoint_equivariance(config: str,
                            checkpoint: Optional[str],
                            angles: Sequence[float] = (-30., -15., 15., 30.),
                            flip: bool = False,
                            split: Optional[str] = 'test',
                            norm: str = 'input',
                            max_images: Optional[int] = None,
                            batch_size: Optional[int] = None,
                            device: str = 'cpu',
                            cfg_options: Optional[dict] = None,
                            out: Optional[str] = None) -> Dict:
    """Equivariance error of a checkpoint on one split of its test set.

    Args:
        config (str): Config file.
        checkpoint (str, optional): Checkpoint file.
        angles (Sequence[float]): Rotation angles in degrees.
        flip (bool): Also evaluate a horizontal flip.
        split (str, optional): ``uld_split`` to evaluate; None: all.
        norm (str): ``'input'`` or ``'bbox'`` normaliser.
        max_images (int, optional): Stop after this many images.
        batch_size (int, optional): Overrides the config's batch size.
        device (str): Device of the model.
        cfg_options (dict, optional): Config overrides.
        out (str, optional): JSON file for the results.

    Returns:
        dict: Output of :func:`evaluate_equivariance` with ``config`` and
        ``checkpoint``.
    """
    model = load_landmark_model(config, checkpoint, device, cfg_options)
    loader = build_split_dataloader(model.cfg, split, batch_size)
    result = evaluate_equivariance(
        model,
        loader,
        angles=angles,
        flip=flip,
        device=device,
        split=split,
        norm=norm,
        max_images=max_images)
    result['config'] = config
    result['checkpoint'] = checkpoint
    if out:
        import mmengine
        mmengine.mkdir_or_exist(osp.dirname(osp.abspath(out)))
        with open(out, 'w') as f:
            json.dump(result, f, indent=2)
    return result


__all__ = [
    'select_split', 'build_split_dataloader', 'load_landmark_model',
    'checkpoint_equivariance', 'format_equivariance_table'
]
