# Copyright (c) mmuld contributors. All rights reserved.
"""Build an mmuld model from a config and a checkpoint for inference."""
import copy
import os.path as osp
from typing import List, Optional, Union

import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

ConfigLike = Union[str, Config, ConfigDict, dict]


def load_config(config: ConfigLike,
                cfg_options: Optional[dict] = None) -> Config:
    """Load a config (path or object) and merge ``cfg_options``.

    Args:
        config (str | Config | dict): Config file path or config object.
        cfg_options (dict, optional): Overrides in ``--cfg-options`` form,
            e.g. ``{'model.backbone.pretrained': 'work_dirs/tiny_sd'}``.

    Returns:
        Config: A copy of the config with the overrides merged.
    """
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        cfg = Config.fromfile(config)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif isinstance(config, dict):
        cfg = Config(copy.deepcopy(dict(config)))
    else:
        raise TypeError('config must be a file path or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise ValueError('the config has no `model` field')
    return cfg


def dataset_leaves(dataset_cfg: dict) -> List[dict]:
    """Flatten ``ConcatDataset`` / ``RepeatDataset`` configs into leaves.

    Args:
        dataset_cfg (dict): A dataset config.

    Returns:
        list[dict]: The dataset configs that read data themselves.
    """
    if dataset_cfg is None:
        return []
    if 'datasets' in dataset_cfg:
        out = []
        for sub in dataset_cfg['datasets']:
            out.extend(dataset_leaves(sub))
        return out
    if 'dataset' in dataset_cfg:
        return dataset_leaves(dataset_cfg['dataset'])
    return [dataset_cfg]


def get_test_pipeline_cfg(cfg: Config) -> list:
    """The test pipeline of a config.

    Taken from ``cfg.test_dataloader.dataset`` (the first dataset of a
    ``ConcatDataset``), else from ``cfg.train_dataloader.dataset``.

    Args:
        cfg (Config): The model config.

    Returns:
        list[dict]: Pipeline (``LoadImage``, ``GetBBoxCenterScale``,
        ``TopdownAffine``, ``PackPoseInputs``, ...).
    """
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        loader = cfg.get(key)
        if not loader or 'dataset' not in loader:
            continue
        leaves = dataset_leaves(loader['dataset'])
        if leaves and leaves[0].get('pipeline'):
            return copy.deepcopy(list(leaves[0]['pipeline']))
    raise ValueError('the config has no dataset pipeline in test_dataloader, '
                     'val_dataloader or train_dataloader')


def init_model(config: ConfigLike,
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build an mmuld (or mmpose) model and load its checkpoint.

    Args:
        config (str | Config | dict): Model config.
        checkpoint (str, optional): Checkpoint path. None keeps the initial
            weights (no cluster centroids for a :class:`ULDEstimator`).
        device (str): Device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides, e.g. the Stable
            Diffusion directory ``model.backbone.pretrained``.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` (the merged config)
        and ``dataset_meta`` (from the checkpoint meta, else None).

    Raises:
        CheckpointError: The checkpoint is corrupt or not plain weights.
        CheckpointMismatchError: The checkpoint is of another method, K or
            Q than the config's model.
    """
    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = load_config(config, cfg_options)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmuld')):
        model = MODELS.build(cfg.model)
    dataset_meta = None
    if checkpoint is not None:
        from mmuld.utils import check_checkpoint_meta
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        check_checkpoint_meta(
            model,
            ckpt,
            checkpoint,
            cfg,
            config_name=config if isinstance(config, str) else None)
        dataset_meta = ckpt.get('meta', {}).get('dataset_meta')
    model.cfg = cfg
    model.dataset_meta = dataset_meta
    model.to(device)
    model.eval()
    return model
