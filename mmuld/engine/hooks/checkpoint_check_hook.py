# Copyright (c) mmuld contributors. All rights reserved.
"""Refuse a ``load_from`` checkpoint that does not fit the config's model."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmuld.registry import HOOKS


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Stop before a checkpoint of another method, K or Q, or with missing,
    unexpected or mis-shaped tensors, is loaded into the model.

    mmengine loads ``load_from`` non-strictly, so such a checkpoint would
    load nothing and the run would go on with random weights.
    ``tools/test.py``, ``tools/train.py`` (with ``load_from``) and the
    learnability benchmark register it; see
    :func:`mmuld.utils.check_checkpoint_meta`.

    Args:
        filename (str, optional): The checkpoint's path, for the message.
            Defaults to the runner's ``cfg.load_from``.
        config_name (str, optional): The config's name, for the message.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 filename: Optional[str] = None,
                 config_name: Optional[str] = None) -> None:
        self.filename = filename
        self.config_name = config_name

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        from mmuld.utils import check_checkpoint_meta
        name = self.filename or runner.cfg.get('load_from') or 'checkpoint'
        check_checkpoint_meta(runner.model, checkpoint, name, runner.cfg,
                              self.config_name)
