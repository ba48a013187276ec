# Copyright (c) mmuld contributors. All rights reserved.
"""The stage table of a D-ULD / D-ULD++ run: the one place that names the
stages and says what each one trains on.

A run is a sequence of stages, each described once, in the model config
(``model.stages``)::

    dict(name='dldpp', iters=100000, lr=5e-4,
         frozen=['backbone', 'descriptor_head'],
         pseudo_labels='two_stage', objective='latent')

:class:`ULDEstimator` builds a :class:`StageSchedule` from it;
:class:`~mmuld.engine.loops.ULDTrainLoop` (stage entry, clustering
rounds, stage checkpoints) resolves the stage of an
iteration from that schedule, each on its own.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

# the stages of the paper, in their order (Sec. 3.2 and 3.3)
STAGE_NAMES = ('bootstrap', 'duld', 'proxy', 'dldpp')
# stages whose losses need the pose VAE
VAE_STAGES = ('proxy', 'dldpp')
# what a stage trains on: nothing (None), K-means pseudo-labels or the
# pseudo-labels of two-stage clustering (D-ULD++ Sec. 3.3.2)
PSEUDO_LABEL_KINDS = ('kmeans', 'two_stage')
# ``pseudo_labels`` of a stage that does not give it (the paper's choice)
DEFAULT_PSEUDO_LABELS = dict(
    bootstrap=None, duld='kmeans', proxy='kmeans', dldpp='two_stage')
# objectives of the dldpp stage, with the pseudo-labels each one trains on
# (None: either kind): Eq. 3 on the encoder's codes (D-ULD++), the whole
# ELBO (the "TSC w/ full VAE" ablation) and D-ULD's losses (the "+ PP"
# ablation: no pose labels, no latent loss)
DLDPP_OBJECTIVES = dict(latent='two_stage', elbo=None, duld='kmeans')


@dataclass(frozen=True)
class Stage:
    """One stage of the table.

    Attributes:
        name (str): One of :data:`STAGE_NAMES`.
        iters (int): Length in iterations.
        start (int): First iteration (0-based) of the stage.
        index (int): Position in the table.
        lr (float, optional): Learning rate of every parameter group; None
            keeps the optimizer's.
        frozen (tuple[str]): Dotted names of sub-modules whose parameters
            do not train.
        pseudo_labels (str, optional): ``None``, ``'kmeans'`` or
            ``'two_stage'``.
        objective (str, optional): What the ``dldpp`` stage trains
            (:data:`DLDPP_OBJECTIVES`, default ``'latent'``); None for the
            other stages.
    """

    name: str
    iters: int
    start: int
    index: int
    lr: Optional[float] = None
    frozen: Tuple[str, ...] = field(default_factory=tuple)
    pseudo_labels: Optional[str] = None
    objective: Optional[str] = None

    @property
    def end(self) -> int:
        """int: First iteration after the stage."""
        return self.start + self.iters

    @property
    def two_stage(self) -> bool:
        """bool: Whether the stage trains on two-stage clustering."""
        return self.pseudo_labels == 'two_stage'


class StageSchedule:
    """The stages of a run, resolved by iteration.

    Args:
        stages (Sequence[dict]): One dict per stage, in order: ``name``
            (one of :data:`STAGE_NAMES`), ``iters``, optionally ``lr``
            (positive), ``frozen`` (dotted sub-module names),
            ``pseudo_labels`` (``None``, ``'kmeans'`` or ``'two_stage'``;
            default: what the objective needs, else
            :data:`DEFAULT_PSEUDO_LABELS` of the name) and, for ``dldpp``,
            ``objective`` (:data:`DLDPP_OBJECTIVES`).

    Raises:
        ValueError: An empty table, an unknown name or pseudo-label kind, a
            stage without iterations, a non-positive lr, an objective
            outside the dldpp stage, or pseudo-labels that the stage's
            losses cannot use.
    """

    def __init__(self, stages: Sequence[dict]) -> None:
        if not stages:
            raise ValueError('`stages` must list at least one stage')
        self.stages: List[Stage] = []
        start = 0
        for index, cfg in enumerate(stages):
            stage = self._parse(dict(cfg), start, index)
            self.stages.append(stage)
            start = stage.end

    @staticmethod
    def _parse(cfg: dict, start: int, index: int) -> Stage:
        if 'name' not in cfg or 'iters' not in cfg:
            raise ValueError(f'stage {cfg} needs `name` and `iters`')
        name = cfg.pop('name')
        if name not in STAGE_NAMES:
            raise ValueError(f'unknown stage name {name!r}, expected one of '
                             f'{STAGE_NAMES}')
        iters = int(cfg.pop('iters'))
        if iters <= 0:
            raise ValueError(f'stage {name} has no iterations')
        lr = cfg.pop('lr', None)
        if lr is not None and not float(lr) > 0:
            raise ValueError(f'stage {name}: lr={lr!r} must be positive')
        objective = cfg.pop('objective',
                            'latent' if name == 'dldpp' else None)
        if name != 'dldpp' and objective is not None:
            raise ValueError(f'stage {name}: only the dldpp stage has an '
                             f'objective, got objective={objective!r}')
        if name == 'dldpp' and objective not in DLDPP_OBJECTIVES:
            raise ValueError(
                f'stage dldpp: objective={objective!r}, expected one of '
                f'{tuple(DLDPP_OBJECTIVES)}')
        need = DLDPP_OBJECTIVES.get(objective)
        kind = cfg.pop('pseudo_labels', need or DEFAULT_PSEUDO_LABELS[name])
        if need and kind != need:
            raise ValueError(
                f'stage dldpp: objective={objective!r} trains on '
                f'pseudo_labels={need!r}, but the stage gives '
                f'pseudo_labels={kind!r}')
        if kind is not None and kind not in PSEUDO_LABEL_KINDS:
            raise ValueError(
                f'stage {name}: pseudo_labels={kind!r}, expected None or one '
                f'of {PSEUDO_LABEL_KINDS}')
        if name == 'bootstrap' and kind is not None:
            raise ValueError('stage bootstrap trains without pseudo-labels: '
                             f'pseudo_labels={kind!r} must be None')
        if name != 'bootstrap' and kind is None:
            raise ValueError(f'stage {name} trains on pseudo-labels: set '
                             "pseudo_labels='kmeans' or 'two_stage'")
        frozen = tuple(cfg.pop('frozen', ()) or ())
        if cfg:
            raise ValueError(f'stage {name}: unknown keys {sorted(cfg)}')
        return Stage(
            name=name, iters=iters, start=start, index=index,
            lr=None if lr is None else float(lr), frozen=frozen,
            pseudo_labels=kind, objective=objective)

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __getitem__(self, index: int) -> Stage:
        return self.stages[index]

    @property
    def names(self) -> List[str]:
        """list[str]: Stage names in order."""
        return [s.name for s in self.stages]

    @property
    def total_iters(self) -> int:
        """int: Iterations of all stages together."""
        return self.stages[-1].end

    @property
    def ends(self) -> List[int]:
        """list[int]: First iteration after each stage."""
        return [s.end for s in self.stages]

    def index_at(self, iteration: int) -> int:
        """Index of the stage that ``iteration`` (0-based) is in; the last
        stage for iterations past the end (the final clustering round)."""
        for stage in self.stages:
            if iteration < stage.end:
                return stage.index
        return len(self.stages) - 1

    def at(self, iteration: int) -> Stage:
        """The stage that ``iteration`` (0-based) is in (see
        :meth:`index_at`)."""
        return self.stages[self.index_at(iteration)]

    def first(self, name: str) -> Optional[Stage]:
        """The first stage called ``name`` (None if there is none)."""
        return next((s for s in self.stages if s.name == name), None)

    def uses(self, kind: str) -> bool:
        """Whether any stage trains on ``kind`` pseudo-labels."""
        return any(s.pseudo_labels == kind for s in self.stages)

    def to_list(self) -> List[Dict]:
        """The table in its config form (with every default filled in)."""
        return [
            dict(name=s.name, iters=s.iters, lr=s.lr, frozen=list(s.frozen),
                 pseudo_labels=s.pseudo_labels,
                 **({} if s.objective is None else
                    dict(objective=s.objective))) for s in self.stages
        ]


def schedule_of(model) -> StageSchedule:
    """The stage table of a (possibly wrapped) model.

    Args:
        model (nn.Module): A :class:`ULDEstimator`, or a wrapper of one.

    Returns:
        StageSchedule: ``model.stage_schedule``.

    Raises:
        ValueError: The model was built without ``stages``.
    """
    model = getattr(model, 'module', model)
    schedule = getattr(model, 'stage_schedule', None)
    if schedule is None:
        raise ValueError(
            f'{type(model).__name__} has no stage table: set `model.stages` '
            "in the config (one dict per stage: name, iters, lr, frozen, "
            'pseudo_labels), which ULDTrainLoop reads')
    return schedule
