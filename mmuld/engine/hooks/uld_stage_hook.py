# Copyright (c) mmuld contributors. All rights reserved.
"""Switch between the training stages of D-ULD / D-ULD++ in one run."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmuld.models.pose_estimators.stages import (VAE_STAGES, Stage,
                                                 StageSchedule, schedule_of)
from mmuld.registry import HOOKS
from mmuld.utils.checkpoint import save_checkpoint_atomic
from mmuld.utils.checkpoint_meta import uld_meta

DATA_BATCH = Optional[dict]
# message-hub scalars of mmengine itself, kept across stages
_RUNTIME_SCALARS = ('lr', 'base_lr', 'momentum', 'time', 'data_time',
                    'grad_norm', 'loss_scale')


@HOOKS.register_module()
class ULDStageHook(Hook):
    """Run bootstrapping, D-ULD, the proxy task and D-ULD++ in sequence.

    The stages are the model's stage table (``model.stages`` in the config,
    :class:`StageSchedule`), which :class:`PseudoLabelHook` reads too. The
    stage of an iteration follows from the iteration counter and that table
    alone, so a resumed run continues in the right stage, whatever order
    the hooks run in. On entering a stage the hook sets ``model.stage``,
    freezes the modules the stage keeps fixed and sets the learning rate of
    every optimizer parameter group; when a stage ends it saves
    ``stage{i}_{name}.pth`` in the work dir.

    Before the first iteration it checks what would otherwise fail stages
    later: K >= 1, a VAE for the ``proxy`` / ``dldpp`` stages, a
    :class:`PseudoLabelHook` for the self-training stages. On entering a
    stage it drops the smoothed losses of the previous stage from the
    message hub, so log lines and ``scalars.json`` show the current
    stage's losses only.

    Every checkpoint gets ``meta['uld']`` (method, stage, K, Q; see
    :mod:`mmuld.utils.checkpoint_meta`) and the random states (torch,
    CUDA, numpy, python) at the moment of saving; ``--resume`` restores
    them, and the training dataloader draws its per-epoch seeds from its
    own generator, so a resumed run repeats the uninterrupted one exactly
    (VAE reparameterisation noise, bootstrapping flips / rotations).

    Args:
        save_stage_checkpoints (bool): Save a checkpoint at every stage
            end. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, save_stage_checkpoints: bool = True) -> None:
        self.save_stage_checkpoints = save_stage_checkpoints
        self.current: Optional[int] = None

    @staticmethod
    def schedule(runner: Runner) -> StageSchedule:
        """The model's stage table."""
        return schedule_of(runner.model)

    def stage_at(self, runner: Runner, iteration: int) -> Stage:
        """The stage of iteration ``iteration`` (0-based), from the model's
        stage table alone."""
        return self.schedule(runner).at(iteration)

    def _apply(self, runner: Runner, index: int) -> None:
        schedule = self.schedule(runner)
        stage = schedule[index]
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.set_stage(stage.name)
        frozen = stage.frozen
        names = [n for n, _ in model.named_parameters()]
        for f in frozen:
            if not any(n == f or n.startswith(f + '.') for n in names):
                runner.logger.warning(
                    f'stage "{stage.name}": frozen module "{f}" has no '
                    'parameters in this model (typo, or module absent)')
        trainable = 0
        if getattr(self, '_never_trained', None) is None:
            # parameters frozen by the model itself (e.g. a fixed backbone)
            # stay frozen in every stage
            self._never_trained = {
                n for n, p in model.named_parameters()
                if not p.requires_grad}
        for name, param in model.named_parameters():
            if name in self._never_trained:
                continue
            train = not any(
                name == f or name.startswith(f + '.') for f in frozen)
            param.requires_grad_(train)
            trainable += param.numel() if train else 0
        # re-apply the mode: fully frozen sub-modules go to eval mode
        model.train(model.training)
        if stage.lr is not None:
            for group in runner.optim_wrapper.param_groups:
                group['lr'] = stage.lr
        self._drop_stale_losses(runner)
        self.current = index
        runner.logger.info(
            f'ULD stage {index + 1}/{len(schedule)} "{stage.name}" '
            f'from iteration {runner.iter} to {stage.end}, '
            f'lr={stage.lr}, frozen={list(frozen)}, '
            f'pseudo_labels={stage.pseudo_labels}, '
            f'trainable parameters: {trainable}')

    @staticmethod
    def _drop_stale_losses(runner: Runner) -> None:
        """Forget what the model logged in earlier stages (losses and
        other outputs such as ``gnorm_*``), so that neither the log lines
        nor ``scalars.json`` repeat their frozen values; the runtime
        scalars (learning rate, times, gradient norm) stay."""
        scalars = runner.message_hub.log_scalars
        for key in list(scalars):
            if not key.startswith('train/'):
                continue
            name = key[len('train/'):]
            if name in _RUNTIME_SCALARS or name.endswith(
                    ('.lr', '_lr', '.momentum', '_momentum')):
                continue
            scalars.pop(key)

    def _check(self, runner: Runner) -> None:
        """Fail before the first iteration on settings that would fail
        stages later."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        k = getattr(model, 'num_landmarks', None)
        if k is not None and (not isinstance(k, int) or k < 1):
            raise ValueError(
                f'model.num_landmarks={k!r}: K must be an integer >= 1')
        schedule = self.schedule(runner)
        names = schedule.names
        needs_vae = [n for n in names if n in VAE_STAGES]
        if needs_vae and getattr(model, 'pose_vae', None) is None:
            raise ValueError(
                f'stages {needs_vae} need a pose VAE but model.pose_vae is '
                'None (a D-ULD model): drop those stages or use a D-ULD++ '
                'model config')
        self_training = [s.name for s in schedule if s.pseudo_labels]
        pl_hooks = [
            h for h in runner.hooks if type(h).__name__ == 'PseudoLabelHook'
        ]
        if self_training and not pl_hooks:
            raise ValueError(
                f'stages {self_training} train on pseudo-labels but no '
                'PseudoLabelHook is in `custom_hooks`')

    def before_train(self, runner: Runner) -> None:
        total = self.schedule(runner).total_iters
        if runner.max_iters != total:
            runner.logger.warning(
                f'train_cfg.max_iters={runner.max_iters} differs from the '
                f'{total} iterations of the configured stages')
        self._check(runner)
        self._own_loader_generator(runner)
        self._restore_rng(runner)
        self._apply(runner, self.stage_at(runner, runner.iter).index)

    # ------------------------------------------------------------------ #
    # checkpoint meta and exact resume
    # ------------------------------------------------------------------ #
    @staticmethod
    def _own_loader_generator(runner: Runner) -> None:
        """Give the training dataloader its own seed generator.

        Each new pass over the data draws one number from the loader's
        generator (torch's global one by default). With a generator of
        its own, those draws are the same in a resumed run (mmengine
        replays the passes when it skips the trained batches) and leave
        the global random state to the model.
        """
        loader = runner.train_dataloader
        if getattr(loader, 'generator', 'absent') is None:
            seed = getattr(runner, 'seed', None) or 0
            loader.generator = torch.Generator().manual_seed(int(seed))

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        checkpoint.setdefault('meta', {})['uld'] = uld_meta(model)
        state = dict(
            torch=torch.get_rng_state(),
            numpy=np.random.get_state(),
            python=random.getstate())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint['uld_rng_state'] = state

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        # applied in before_train: Runner.resume may re-seed after loading
        state = checkpoint.get('uld_rng_state')
        if state is not None and getattr(runner, '_resume', False):
            self._rng_to_restore = state

    def _restore_rng(self, runner: Runner) -> None:
        state = getattr(self, '_rng_to_restore', None)
        if state is None:
            return
        self._rng_to_restore = None
        torch.set_rng_state(state['torch'])
        np.random.set_state(state['numpy'])
        random.setstate(state['python'])
        if 'cuda' in state and torch.cuda.is_available():
            cuda = state['cuda']
            if len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
        runner.logger.info('restored the random states of the checkpoint')

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        index = self.stage_at(runner, runner.iter).index
        if index != self.current:
            self._apply(runner, index)

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        filename = self.stage_checkpoint(runner, runner.iter)
        if filename is not None:
            save_checkpoint_atomic(runner, filename)
            runner.logger.info(f'stage done: saved {filename}')

    def stage_checkpoint(self, runner: Runner,
                         iteration: int) -> Optional[str]:
        """Name of the stage checkpoint saved after ``iteration``.

        Args:
            runner (Runner): The runner (its model has the stage table).
            iteration (int): 0-based iteration index.

        Returns:
            str, optional: ``stage{i}_{name}.pth`` when a stage ends with
            that iteration and stage checkpoints are saved, else None.
        """
        if not self.save_stage_checkpoints:
            return None
        stage = self.stage_at(runner, iteration)
        if iteration + 1 != stage.end:
            return None
        return f'stage{stage.index + 1}_{stage.name}.pth'
