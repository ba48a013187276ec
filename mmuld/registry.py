# Copyright (c) mmuld contributors. All rights reserved.
"""mmuld registries.

Every registry is a child of the matching mmpose registry under the scope
``mmuld``. Configs use ``default_scope = 'mmuld'`` and can still build any
mmpose / mmengine component by name (child registries fall back to their
parents), e.g. ``dict(type='MSRAHeatmap', ...)``.
"""
from mmengine.registry import Registry
from mmpose.registry import DATA_SAMPLERS as MMPOSE_DATA_SAMPLERS
from mmpose.registry import DATASETS as MMPOSE_DATASETS
from mmpose.registry import EVALUATORS as MMPOSE_EVALUATORS
from mmpose.registry import HOOKS as MMPOSE_HOOKS
from mmpose.registry import INFERENCERS as MMPOSE_INFERENCERS
from mmpose.registry import KEYPOINT_CODECS as MMPOSE_KEYPOINT_CODECS
from mmpose.registry import LOG_PROCESSORS as MMPOSE_LOG_PROCESSORS
from mmpose.registry import LOOPS as MMPOSE_LOOPS
from mmpose.registry import METRICS as MMPOSE_METRICS
from mmpose.registry import MODEL_WRAPPERS as MMPOSE_MODEL_WRAPPERS
from mmpose.registry import MODELS as MMPOSE_MODELS
from mmpose.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMPOSE_OPTIM_WRAPPER_CONSTRUCTORS
from mmpose.registry import OPTIM_WRAPPERS as MMPOSE_OPTIM_WRAPPERS
from mmpose.registry import OPTIMIZERS as MMPOSE_OPTIMIZERS
from mmpose.registry import PARAM_SCHEDULERS as MMPOSE_PARAM_SCHEDULERS
from mmpose.registry import RUNNERS as MMPOSE_RUNNERS
from mmpose.registry import TRANSFORMS as MMPOSE_TRANSFORMS
from mmpose.registry import VISBACKENDS as MMPOSE_VISBACKENDS
from mmpose.registry import VISUALIZERS as MMPOSE_VISUALIZERS

RUNNERS = Registry('runner', parent=MMPOSE_RUNNERS, scope='mmuld')
LOOPS = Registry(
    'loop', parent=MMPOSE_LOOPS, scope='mmuld', locations=['mmuld.engine'])
HOOKS = Registry(
    'hook', parent=MMPOSE_HOOKS, scope='mmuld', locations=['mmuld.engine'])
DATASETS = Registry(
    'dataset',
    parent=MMPOSE_DATASETS,
    scope='mmuld',
    locations=['mmuld.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMPOSE_DATA_SAMPLERS, scope='mmuld')
TRANSFORMS = Registry(
    'transform',
    parent=MMPOSE_TRANSFORMS,
    scope='mmuld',
    locations=['mmuld.datasets.transforms'])
MODELS = Registry(
    'model', parent=MMPOSE_MODELS, scope='mmuld', locations=['mmuld.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMPOSE_MODEL_WRAPPERS, scope='mmuld')
OPTIMIZERS = Registry('optimizer', parent=MMPOSE_OPTIMIZERS, scope='mmuld')
OPTIM_WRAPPERS = Registry(
    'optim wrapper', parent=MMPOSE_OPTIM_WRAPPERS, scope='mmuld')
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMPOSE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmuld')
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMPOSE_PARAM_SCHEDULERS, scope='mmuld')
METRICS = Registry(
    'metric',
    parent=MMPOSE_METRICS,
    scope='mmuld',
    locations=['mmuld.evaluation.metrics'])
EVALUATORS = Registry(
    'evaluator', parent=MMPOSE_EVALUATORS, scope='mmuld')
KEYPOINT_CODECS = Registry(
    'KEYPOINT_CODECS', parent=MMPOSE_KEYPOINT_CODECS, scope='mmuld')
VISUALIZERS = Registry(
    'visualizer',
    parent=MMPOSE_VISUALIZERS,
    scope='mmuld',
    locations=['mmuld.visualization'])
VISBACKENDS = Registry(
    'vis_backend', parent=MMPOSE_VISBACKENDS, scope='mmuld')
LOG_PROCESSORS = Registry(
    'log_processor', parent=MMPOSE_LOG_PROCESSORS, scope='mmuld')
INFERENCERS = Registry(
    'inferencer',
    parent=MMPOSE_INFERENCERS,
    scope='mmuld',
    locations=['mmuld.apis'])
