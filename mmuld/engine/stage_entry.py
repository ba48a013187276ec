# Copyright (c) mmuld contributors. All rights reserved.
"""Entering a training stage: the one place that sets what a stage trains.

:class:`~mmuld.engine.loops.ULDTrainLoop` and the training benchmark
(``tools/analysis/benchmark_training.py``) both enter stages through
:func:`enter_stage` and put the model in training mode through
:func:`train_mode`, so that a benchmark times exactly what a run trains.
"""
from dataclasses import dataclass
from typing import FrozenSet, List

from torch import nn

from mmuld.models.pose_estimators.stages import Stage


@dataclass(frozen=True)
class StageEntry:
    """What :func:`enter_stage` did.

    Attributes:
        stage (Stage): The stage entered.
        trainable (int): Parameters (elements) that train in it.
        unknown_frozen (list[str]): ``frozen`` names of the stage that match
            no parameter of the model (a typo, or a module the model lacks).
    """

    stage: Stage
    trainable: int
    unknown_frozen: List[str]


def fixed_parameters(model: nn.Module) -> FrozenSet[str]:
    """Names of the parameters the model itself keeps fixed (e.g. a frozen
    pretrained backbone): they stay fixed in every stage.

    Args:
        model (nn.Module): The model before its first stage is entered.

    Returns:
        frozenset[str]: Parameters with ``requires_grad=False``.
    """
    return frozenset(n for n, p in model.named_parameters()
                     if not p.requires_grad)


def _under(name: str, prefixes) -> bool:
    return any(name == f or name.startswith(f + '.') for f in prefixes)


def enter_stage(model: nn.Module,
                stage: Stage,
                optim_wrapper=None,
                fixed: FrozenSet[str] = frozenset()) -> StageEntry:
    """Put ``model`` into ``stage``.

    Sets ``model.stage``, makes every parameter under one of the stage's
    ``frozen`` names (dotted sub-module names) fixed and every other one
    trainable (except ``fixed``), puts fully frozen sub-modules in eval
    mode (:func:`train_mode`, when the model is training) and sets the
    learning rate of every optimizer parameter group to the stage's
    ``lr``.

    Args:
        model (nn.Module): The unwrapped :class:`ULDEstimator`.
        stage (Stage): The stage to enter.
        optim_wrapper (OptimWrapper, optional): Its parameter groups get
            ``stage.lr`` (when set).
        fixed (frozenset[str]): Parameters that never train
            (:func:`fixed_parameters` of the model before its first stage).

    Returns:
        StageEntry: The number of trainable parameters and the ``frozen``
        names that match nothing.
    """
    model.set_stage(stage)
    names = [n for n, _ in model.named_parameters()]
    unknown = [f for f in stage.frozen
               if not any(_under(n, (f, )) for n in names)]
    trainable = 0
    for name, param in model.named_parameters():
        if name in fixed:
            continue
        train = not _under(name, stage.frozen)
        param.requires_grad_(train)
        trainable += param.numel() if train else 0
    if model.training:
        train_mode(model)
    if stage.lr is not None and optim_wrapper is not None:
        for group in optim_wrapper.param_groups:
            group['lr'] = stage.lr
    return StageEntry(stage, trainable, unknown)


def train_mode(model: nn.Module) -> nn.Module:
    """Training mode, except for what does not train.

    Sub-modules whose parameters are all frozen go to eval mode, and so do
    frozen BatchNorm layers inside partly trained ones, so that their
    running statistics do not drift while other parts train (the data
    preprocessor is left alone).

    Args:
        model (nn.Module): The unwrapped model.

    Returns:
        nn.Module: ``model``.
    """
    model.train(True)
    for name, mod in model.named_children():
        if name == 'data_preprocessor':
            continue
        params = list(mod.parameters())
        if params and not any(p.requires_grad for p in params):
            mod.eval()
        elif params:
            for sub in mod.modules():
                ps = list(sub.parameters(recurse=False))
                if isinstance(sub, nn.modules.batchnorm._BatchNorm) and ps \
                        and not any(p.requires_grad for p in ps):
                    sub.eval()
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside an mmengine model wrapper (DDP and the like)."""
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model
