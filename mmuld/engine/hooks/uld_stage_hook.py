# Copyright (c) mmuld contributors. All rights reserved.
"""Switch between the training stages of D-ULD / D-ULD++ in one run."""
from typing import Dict, List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmuld.registry import HOOKS

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class ULDStageHook(Hook):
    """Run bootstrapping, D-ULD, the proxy task and D-ULD++ in sequence.

    The stage of an iteration follows from the iteration counter alone, so a
    resumed run continues in the right stage. On entering a stage the hook
    sets ``model.stage``, freezes the modules the stage keeps fixed and sets
    the learning rate of every optimizer parameter group; when a stage ends
    it saves ``stage{i}_{name}.pth`` in the work dir.

    Args:
        stages (Sequence[dict]): One dict per stage, in order, with
            ``name`` (one of ``bootstrap``, ``duld``, ``proxy``, ``dldpp``),
            ``iters`` (length), ``lr`` and optionally ``frozen``: names of
            sub-modules of the model (dotted, e.g. ``'descriptor_head'`` or
            ``'pose_vae.decoder'``) whose parameters do not train.
        save_stage_checkpoints (bool): Save a checkpoint at every stage
            end. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 stages: Sequence[dict],
                 save_stage_checkpoints: bool = True) -> None:
        if not stages:
            raise ValueError('`stages` must list at least one stage')
        self.stages: List[Dict] = [dict(s) for s in stages]
        for s in self.stages:
            if 'name' not in s or 'iters' not in s:
                raise ValueError(f'stage {s} needs `name` and `iters`')
            if int(s['iters']) <= 0:
                raise ValueError(f'stage {s["name"]} has no iterations')
        self.ends = []
        total = 0
        for s in self.stages:
            total += int(s['iters'])
            self.ends.append(total)
        self.save_stage_checkpoints = save_stage_checkpoints
        self.current: Optional[int] = None

    @property
    def total_iters(self) -> int:
        """int: Iterations of all stages together."""
        return self.ends[-1]

    def stage_index(self, iteration: int) -> int:
        """Index of the stage that iteration ``iteration`` (0-based) is in."""
        for i, end in enumerate(self.ends):
            if iteration < end:
                return i
        return len(self.stages) - 1

    def _apply(self, runner: Runner, index: int) -> None:
        stage = self.stages[index]
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.set_stage(stage['name'])
        frozen = tuple(stage.get('frozen', ()))
        names = [n for n, _ in model.named_parameters()]
        for f in frozen:
            if not any(n == f or n.startswith(f + '.') for n in names):
                runner.logger.warning(
                    f'stage "{stage["name"]}": frozen module "{f}" has no '
                    'parameters in this model (typo, or module absent)')
        trainable = 0
        for name, param in model.named_parameters():
            if name.startswith('backbone.') and not param.requires_grad \
                    and not name.startswith('backbone.aggregator'):
                continue  # frozen Stable Diffusion weights stay frozen
            train = not any(
                name == f or name.startswith(f + '.') for f in frozen)
            param.requires_grad_(train)
            trainable += param.numel() if train else 0
        if 'lr' in stage:
            for group in runner.optim_wrapper.param_groups:
                group['lr'] = stage['lr']
        self.current = index
        runner.logger.info(
            f'ULD stage {index + 1}/{len(self.stages)} "{stage["name"]}" '
            f'from iteration {runner.iter} to {self.ends[index]}, '
            f'lr={stage.get("lr")}, frozen={list(frozen)}, '
            f'trainable parameters: {trainable}')

    def before_train(self, runner: Runner) -> None:
        if runner.max_iters != self.total_iters:
            runner.logger.warning(
                f'train_cfg.max_iters={runner.max_iters} differs from the '
                f'{self.total_iters} iterations of the configured stages')
        self._apply(runner, self.stage_index(runner.iter))

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        index = self.stage_index(runner.iter)
        if index != self.current:
            self._apply(runner, index)

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        index = self.current
        if self.save_stage_checkpoints and index is not None \
                and runner.iter + 1 == self.ends[index]:
            name = self.stages[index]['name']
            runner.save_checkpoint(
                runner.work_dir, f'stage{index + 1}_{name}.pth')
            runner.logger.info(f'stage "{name}" done: saved '
                               f'stage{index + 1}_{name}.pth')
