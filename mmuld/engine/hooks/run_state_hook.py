# Copyright (c) mmuld contributors. All rights reserved.
"""What a D-ULD / D-ULD++ checkpoint holds besides the weights."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmuld.registry import HOOKS
from mmuld.utils.checkpoint_meta import uld_meta
from ..stage_entry import unwrap


@HOOKS.register_module()
class ULDRunStateHook(Hook):
    """Describe every checkpoint and make ``--resume`` exact.

    Every checkpoint gets ``meta['uld']`` (method, stage, K, Q; see
    :mod:`mmuld.utils.checkpoint_meta`) and the random states (torch,
    CUDA, numpy, python) at the moment of saving. On ``--resume`` the
    states are restored before the first iteration (in ``before_train``:
    the runner may re-seed after loading), so that together with the
    training dataloader's own seed generator
    (:class:`~mmuld.engine.loops.ULDTrainLoop`) a resumed run repeats the
    uninterrupted one exactly (VAE reparameterisation noise,
    bootstrapping flips / rotations, augmentations).

    :class:`~mmuld.engine.loops.ULDTrainLoop` registers one; it is not
    listed in configs.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._to_restore = None

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})['uld'] = uld_meta(
            unwrap(runner.model))
        state = dict(
            torch=torch.get_rng_state(),
            numpy=np.random.get_state(),
            python=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['uld_rng_state'] = state

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('uld_rng_state')
        if state is not None and getattr(runner, '_resume', False):
            self._to_restore = state

    def before_train(self, runner: Runner) -> None:
        state, self._to_restore = self._to_restore, None
        if state is None:
            return
        torch.set_rng_state(state['torch'])
        np.random.set_state(state['numpy'])
        random.setstate(state['python'])
        if 'cuda' in state and torch.cuda.is_available():
            cuda = state['cuda']
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
        runner.logger.info('restored the random states of the checkpoint')
