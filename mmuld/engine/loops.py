# Copyright (c) mmuld contributors. All rights reserved.
"""The training loop of D-ULD / D-ULD++: the one owner of the procedure."""
import logging
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader

from mmuld.models.pose_estimators.stages import (VAE_STAGES, Stage,
                                                 StageSchedule, schedule_of)
from mmuld.registry import LOOPS
from mmuld.utils.checkpoint import save_checkpoint_atomic
from .clustering_rounds import ClusteringRounds
from .hooks.run_state_hook import ULDRunStateHook
from .stage_entry import enter_stage, fixed_parameters, train_mode, unwrap

# message-hub scalars of mmengine itself, kept across stages
_RUNTIME_SCALARS = ('lr', 'base_lr', 'momentum', 'time', 'data_time',
                    'grad_norm', 'loss_scale')


def stage_checkpoint_name(stage: Stage) -> str:
    """File name of the checkpoint saved at the end of ``stage``.

    Args:
        stage (Stage): A stage of the table.

    Returns:
        str: ``stage{i}_{name}.pth``, ``i`` counted from 1.
    """
    return f'stage{stage.index + 1}_{stage.name}.pth'


@LOOPS.register_module()
class ULDTrainLoop(IterBasedTrainLoop):
    """Bootstrapping, D-ULD, the proxy task and D-ULD++ in one run.

    The stages are the model's stage table (``model.stages`` in the config,
    :class:`StageSchedule`); the loop reads it and does, in this order,
    everything that depends on it:

    - before the first iteration it checks what would otherwise fail
      stages later (K >= 1, a VAE for the ``proxy`` / ``dldpp`` stages, K
      and Q against the training set);
    - before every iteration it enters the iteration's stage when it
      changes (:func:`enter_stage`: ``model.stage``, frozen parameters,
      eval mode of frozen modules, learning rate) and drops the previous
      stage's smoothed losses from the message hub, so log lines and
      ``scalars.json`` show the current stage's losses only; then it runs
      a clustering round when one is due (:class:`ClusteringRounds`);
    - after the last iteration of the run it runs the final clustering
      round, and after the last iteration of each stage it saves
      ``stage{i}_{name}.pth`` (with that round's pseudo-labels when it is
      the run's last iteration).

    The stage of an iteration follows from the iteration counter and the
    table alone, so a resumed run continues in the right stage.
    ``max_iters`` is the table's length. The training dataloader draws its
    per-epoch seeds from a generator of its own and the loop registers a
    :class:`ULDRunStateHook` (checkpoint meta and random states), so a
    resumed run repeats the uninterrupted one exactly.

    Args:
        runner (Runner): The runner; its model has the stage table.
        dataloader (DataLoader | dict): The training dataloader.
        max_iters (int, optional): Must equal the table's length when
            given; None takes it from the table.
        val_begin (int): See :class:`IterBasedTrainLoop`.
        val_interval (int): See :class:`IterBasedTrainLoop`. Defaults to
            ``10**9`` (no validation during training).
        dynamic_intervals (list, optional): See :class:`IterBasedTrainLoop`.
        clustering (dict, optional): Arguments of :class:`ClusteringRounds`
            (``interval``, ``num_pose_clusters``, ``candidates``, ...).
        save_stage_checkpoints (bool): Save a checkpoint at every stage
            end. Defaults to True.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_iters: Optional[int] = None,
                 val_begin: int = 1,
                 val_interval: int = 10**9,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None,
                 clustering: Optional[dict] = None,
                 save_stage_checkpoints: bool = True) -> None:
        self.schedule: StageSchedule = schedule_of(runner.model)
        total = self.schedule.total_iters
        if max_iters is not None and int(max_iters) != total:
            raise ValueError(
                f'train_cfg.max_iters={max_iters} differs from the {total} '
                'iterations of the stage table (model.stages); leave '
                'max_iters out, the loop takes it from the table')
        super().__init__(runner, dataloader, total, val_begin, val_interval,
                         dynamic_intervals)
        self.clustering = ClusteringRounds(**(clustering or {}))
        self.save_stage_checkpoints = bool(save_stage_checkpoints)
        self.current: Optional[int] = None
        self._fixed: Optional[FrozenSet[str]] = None
        self._own_loader_generator()
        runner.register_hook(ULDRunStateHook(), 'VERY_HIGH')

    @property
    def model(self):
        """The unwrapped model."""
        return unwrap(self.runner.model)

    # ------------------------------------------------------------------ #
    # the run
    # ------------------------------------------------------------------ #
    def run(self) -> torch.nn.Module:
        """Launch training (mmengine's iteration loop, with the stages)."""
        self._check()
        self.runner.call_hook('before_train')
        self._log_restored_bank()
        self.enter(self.schedule.at(self._iter))
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            print_log(
                f'Advance dataloader {self._iter} steps to skip data '
                'that has already been trained',
                logger='current',
                level=logging.WARNING)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        while self._iter < self._max_iters and not self.stop_training:
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_iter(self, data_batch: Sequence[dict]) -> None:
        """One iteration: stage entry and clustering round when due, the
        hooks, the step, then the final round and the stage checkpoint."""
        stage = self.schedule.at(self._iter)
        if stage.index != self.current:
            self.enter(stage)
        if self.clustering.due(self.model, stage, self._iter):
            self.clustering.run(self.runner, stage, self._iter)
        self.runner.model.train()
        train_mode(self.model)
        self.runner.call_hook(
            'before_train_iter', batch_idx=self._iter, data_batch=data_batch)
        outputs = self.runner.model.train_step(
            data_batch, optim_wrapper=self.runner.optim_wrapper)
        self._after_step(stage)
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=self._iter,
            data_batch=data_batch,
            outputs=outputs)
        self._iter += 1

    def _after_step(self, stage: Stage) -> None:
        """Final round after the run's last iteration, then the stage
        checkpoint after a stage's last one."""
        last = self._iter + 1 == self._max_iters
        if last and self.clustering.final_round and stage.pseudo_labels:
            self.runner.logger.info(
                f'final clustering round on the weights after iteration '
                f'{self._iter + 1} (the last one)')
            self.clustering.run(self.runner, stage, iteration=self._iter + 1)
        name = self.stage_checkpoint(self._iter)
        if name is not None:
            save_checkpoint_atomic(self.runner, name)
            self.runner.logger.info(f'stage done: saved {name}')

    def stage_checkpoint(self, iteration: int) -> Optional[str]:
        """Name of the stage checkpoint saved after ``iteration``.

        Args:
            iteration (int): 0-based iteration index.

        Returns:
            str, optional: ``stage{i}_{name}.pth`` when a stage ends with
            that iteration and stage checkpoints are saved, else None.
        """
        if not self.save_stage_checkpoints:
            return None
        stage = self.schedule.at(iteration)
        if iteration + 1 != stage.end:
            return None
        return stage_checkpoint_name(stage)

    # ------------------------------------------------------------------ #
    # stages
    # ------------------------------------------------------------------ #
    def enter(self, stage: Stage) -> None:
        """Enter ``stage`` (:func:`enter_stage`) and start its logs."""
        model = self.model
        if self._fixed is None:
            # parameters frozen by the model itself (e.g. a fixed backbone)
            # stay frozen in every stage
            self._fixed = fixed_parameters(model)
        entry = enter_stage(model, stage, self.runner.optim_wrapper,
                            self._fixed)
        for name in entry.unknown_frozen:
            self.runner.logger.warning(
                f'stage "{stage.name}": frozen module "{name}" has no '
                'parameters in this model (typo, or module absent)')
        self._drop_stale_losses()
        self.current = stage.index
        self.runner.logger.info(
            f'ULD stage {stage.index + 1}/{len(self.schedule)} '
            f'"{stage.name}" from iteration {self._iter} to {stage.end}, '
            f'lr={stage.lr}, frozen={list(stage.frozen)}, '
            f'pseudo_labels={stage.pseudo_labels}, '
            f'trainable parameters: {entry.trainable}')

    def _drop_stale_losses(self) -> None:
        """Forget what the model logged in earlier stages (losses and
        other outputs such as ``gnorm_*``), so that neither the log lines
        nor ``scalars.json`` repeat their frozen values; the runtime
        scalars (learning rate, times, gradient norm) stay."""
        scalars = self.runner.message_hub.log_scalars
        for key in list(scalars):
            if not key.startswith('train/'):
                continue
            name = key[len('train/'):]
            if name in _RUNTIME_SCALARS or name.endswith(
                    ('.lr', '_lr', '.momentum', '_momentum')):
                continue
            scalars.pop(key)

    # ------------------------------------------------------------------ #
    # checks and state
    # ------------------------------------------------------------------ #
    def _check(self) -> None:
        """Fail before the first iteration on settings that would fail
        stages later."""
        model = self.model
        k = getattr(model, 'num_landmarks', None)
        if k is not None and (not isinstance(k, int) or k < 1):
            raise ValueError(
                f'model.num_landmarks={k!r}: K must be an integer >= 1')
        needs_vae = [n for n in self.schedule.names if n in VAE_STAGES]
        if needs_vae and getattr(model, 'pose_vae', None) is None:
            raise ValueError(
                f'stages {needs_vae} need a pose VAE but model.pose_vae is '
                'None (a D-ULD model): drop those stages or use a D-ULD++ '
                'model config')
        if any(s.pseudo_labels for s in self.schedule):
            self.clustering.check(model, len(self.dataloader.dataset),
                                  self.runner.logger)

    def _log_restored_bank(self) -> None:
        bank = self.model.pseudo_labels
        if bank is not None:  # loaded with the model's weights
            made_in = self.schedule.at(bank.iteration).name
            self.runner.logger.info(
                f'restored pseudo-labels of round {bank.round} (stage '
                f'"{made_in}", iteration {bank.iteration})')

    def _own_loader_generator(self) -> None:
        """Give the training dataloader its own seed generator.

        Each new pass over the data draws one number from the loader's
        generator (torch's global one by default). With a generator of
        its own, those draws are the same in a resumed run (the loop
        replays the passes when it skips the trained batches) and leave
        the global random state to the model.
        """
        loader = self.dataloader
        if getattr(loader, 'generator', 'absent') is None:
            seed = getattr(self.runner, 'seed', None) or 0
            loader.generator = torch.Generator().manual_seed(int(seed))
