# Copyright (c) mmuld contributors. All rights reserved.
"""Semantic mutants of the method, applied as patches of live objects.

Each mutant breaks one behaviour of the method (a loss that no longer
trains, a stage that freezes nothing, a clustering that returns constant
labels, ...) by replacing a function, a method or a class attribute of the
imported package: it names *what* it breaks, not the source text that does
it, so it keeps its meaning when the code around it is rewritten.
:func:`activate` applies one; :mod:`mmuld.testing.mutation` runs the tests
that should notice each one with it active (in every Python process of the
run, subprocesses included) and reports whether a test failed.

A mutant whose target no longer exists raises :class:`StaleMutant` when it
is activated.
"""
import functools
import importlib
import pkgutil
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List

T_LOSS = 'tests/test_models/test_uld_estimator_loss.py'
T_LOOP = 'tests/test_engine/test_uld_train_loop.py'
T_ROUND = 'tests/test_clustering/test_clustering_round.py'
T_PIPE = 'tests/test_engine/test_pipeline_resume.py'
T_LOSSES = 'tests/test_models/test_losses/test_elbo_mse_losses.py'
T_VAE = 'tests/test_models/test_necks/test_pose_vae_neck.py'
T_EQV = 'tests/test_evaluation/test_equivariance_eval.py'
T_INF = 'tests/test_apis/test_uld_inferencer.py'
T_EXPORT = 'tests/test_tools/test_export.py'
T_NME = 'tests/test_evaluation/test_nme_functional.py'
T_METRIC = 'tests/test_evaluation/test_regression_nme_metric.py'
T_HOOK_DIST = 'tests/test_engine/test_clustering_rounds_dist.py'
T_TRAIN = 'tests/test_engine/test_train_tool.py'
T_CAND = 'tests/test_models/test_dense_candidates.py'
T_DYN = 'tests/test_models/test_training_dynamics.py'
T_CORNER = 'tests/test_clustering/test_corner_round.py'
T_IPTS = 'tests/test_models/test_interest_points.py'
T_LEARNABILITY = 'tests/test_tools/test_learnability.py'
T_DIFFUSION = 'tests/test_diffusion/test_small_diffusion.py'
T_DENSE = 'tests/test_clustering/test_dense_decoding.py'
#: the end-to-end learning test, run with every training mutant
T_LEARN = 'tests/test_engine/test_learning.py'


class StaleMutant(RuntimeError):
    """The object a mutant patches no longer exists."""


@dataclass
class Mutant:
    """One semantic mutant.

    Attributes:
        name (str): Identifier (``--only NAME``).
        what (str): The behaviour it breaks, in words.
        apply (Callable[[], None]): Patches the imported package.
        tests (list[str]): Test files expected to notice it.
        learning (bool): Also run :data:`T_LEARN` (training mutants).
    """
    name: str
    what: str
    apply: Callable[[], None]
    tests: List[str] = field(default_factory=list)
    learning: bool = False


def _resolve(path: str) -> Any:
    """``'pkg.module:Class.attr'`` -> the object (StaleMutant if gone)."""
    module, _, attrs = path.partition(':')
    try:
        obj = importlib.import_module(module)
        for name in filter(None, attrs.split('.')):
            obj = getattr(obj, name)
    except (ImportError, AttributeError) as exc:
        raise StaleMutant(f'{path}: {exc}') from exc
    return obj


def import_package(package: str = 'mmuld') -> None:
    """Import every module of ``package``, so that a function replaced by
    :func:`replace_function` is replaced in every module that holds it."""
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + '.'):
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional dependency; not a target then
            continue


def replace_function(path: str, make: Callable[[Callable], Callable]
                     ) -> None:
    """Replace the function at ``path`` (``'module:name'``) by
    ``make(original)`` in every loaded module that refers to it (``from x
    import f`` binds its own name)."""
    import_package()
    original = _resolve(path)
    new = functools.wraps(original)(make(original))
    for module in list(sys.modules.values()):
        if module is None or not getattr(module, '__name__', '').startswith(
                'mmuld'):
            continue
        for name, value in list(vars(module).items()):
            if value is original:
                setattr(module, name, new)


def replace_method(path: str, make: Callable[[Callable], Callable]) -> None:
    """Replace the method ``'module:Class.name'`` by ``make(original)``
    (static methods stay static)."""
    owner_path, _, name = path.rpartition('.')
    owner = _resolve(owner_path)
    if name not in vars(owner):
        raise StaleMutant(f'{path}: {owner.__name__} defines no {name!r}')
    raw = vars(owner)[name]
    if isinstance(raw, staticmethod):
        setattr(owner, name, staticmethod(make(raw.__func__)))
    else:
        setattr(owner, name, functools.wraps(raw)(make(raw)))


def scale_losses(factor: float) -> Callable[[Callable], Callable]:
    """A method returning a dict of losses, every value times ``factor``."""

    def make(fn):

        def mutated(*args, **kwargs):
            return {k: v * factor for k, v in fn(*args, **kwargs).items()}

        return mutated

    return make


def _call_with(**changes) -> Callable[[Callable], Callable]:
    """A function called with some keyword arguments replaced."""

    def make(fn):

        def mutated(*args, **kwargs):
            return fn(*args, **dict(kwargs, **changes))

        return mutated

    return make


def _args_mapped(index: int, how: Callable[[Any], Any]
                 ) -> Callable[[Callable], Callable]:
    """A function whose positional argument ``index`` goes through
    ``how`` first."""

    def make(fn):

        def mutated(*args, **kwargs):
            args = list(args)
            args[index] = how(args[index])
            return fn(*args, **kwargs)

        return mutated

    return make


def _raises(fn):

    def mutated(*args, **kwargs):
        raise RuntimeError('mutant')

    return mutated


# ---------------------------------------------------------------------- #
# the mutants' patches
# ---------------------------------------------------------------------- #
EST = 'mmuld.models.pose_estimators.uld_estimator:ULDEstimator'
DET = 'mmuld.models.heads.detector_head:ULDDetectorHead'
DESC = 'mmuld.models.heads.descriptor_head:ULDDescriptorHead'
VAE = 'mmuld.models.necks.pose_vae_neck:PoseVAENeck'
DECODER = 'mmuld.models.pose_estimators.landmark_decoder:LandmarkDecoder'
ROUND = 'mmuld.clustering.clustering_round'
STAGE = 'mmuld.engine.stage_entry:enter_stage'


def _stage_entry_freezes_nothing(fn):

    def mutated(model, stage, optim_wrapper=None, fixed=frozenset()):
        entry = fn(model, stage, optim_wrapper, fixed)
        for name, param in model.named_parameters():
            if name not in fixed:
                param.requires_grad_(True)
        return entry

    return mutated


def _stage_entry_lr(value):

    def make(fn):

        def mutated(model, stage, optim_wrapper=None, fixed=frozenset()):
            if value is None:  # never sets the learning rate
                return fn(model, stage, None, fixed)
            return fn(model, replace(stage, lr=value) if stage.lr is not None
                      else stage, optim_wrapper, fixed)

        return mutated

    return make


def _identity_alignment(fn):

    def mutated(centroids, reference):
        import torch
        q, k = centroids.shape[:2]
        return torch.arange(k).expand(q, k).clone()

    return mutated


def _landmarks_on_top_border(fn):

    def mutated(*args, **kwargs):
        res = fn(*args, **kwargs)
        res['keypoints'] = res['keypoints'].clone()
        res['keypoints'][..., 1] = 0
        return res

    return mutated


def _ridge_absolute(fn):

    def mutated(x_tr, y_tr, x_te, alpha_rel):
        from sklearn.linear_model import Ridge
        reg = Ridge(alpha=alpha_rel, fit_intercept=True)
        return reg.fit(x_tr, y_tr).predict(x_te)

    return mutated


def _spread_corners(fn):

    def mutated(images, num, *args, **kwargs):
        import torch
        b, _, h, w = images.shape
        g = torch.Generator().manual_seed(0)
        pts = torch.rand(b, num, 2, generator=g) * (min(h, w) - 16) + 8
        return pts.to(images.device), torch.ones(
            b, num, dtype=torch.bool, device=images.device)

    return mutated


def _margin_only(fn):

    def mutated(peaks):
        return peaks['margin']

    return mutated


def _all_in_frame(fn):

    def mutated(points, size):
        import numpy as np
        import torch
        if isinstance(points, torch.Tensor):
            return torch.ones(points.shape[:-1], dtype=torch.bool,
                              device=points.device)
        return np.ones(points.shape[:-1], dtype=bool)

    return mutated


def _no_refinement(fn):

    def mutated(self, kpts, desc_map, centroids):
        return kpts

    return mutated


def _anchors_dropped(fn):

    def mutated(*args, **kwargs):
        kwargs['anchors'] = None
        return fn(*args, **kwargs)

    return mutated


def _no_floor(fn):

    def mutated(heat, kpts, scores, valid, thr, n, border):
        return kpts * valid[..., None], scores * valid, valid

    return mutated


def _border_ignored(fn):

    def mutated(points, *args, **kwargs):
        import torch
        return torch.zeros(points.shape[:-1], dtype=torch.bool)

    return mutated


def _mean_of_test_shapes(fn):

    def mutated(train, test, *args, **kwargs):
        return fn(test, test, *args, **kwargs)

    return mutated


def _parts_always_found(fn):

    def mutated(results, *args, **kwargs):
        results = {name: dict(r, all_parts_found=True)
                   for name, r in results.items()}
        return fn(results, *args, **kwargs)

    return mutated


def _set_attr(path: str, value: Any) -> Callable[[], None]:

    def apply():
        owner_path, _, name = path.rpartition('.')
        owner = _resolve(owner_path)
        if not hasattr(owner, name):
            raise StaleMutant(f'{path}: no attribute {name!r}')
        setattr(owner, name, value)

    return apply


def _method(path, make):
    return lambda: replace_method(path, make)


def _function(path, make):
    return lambda: replace_function(path, make)


MUTANTS: List[Mutant] = [
    Mutant('all_losses_zero', 'every loss of ULDEstimator.loss times 0',
           _method(f'{EST}.loss', scale_losses(0)), [T_LOSS, T_LOOP, T_PIPE],
           learning=True),
    Mutant('loss_raises', 'ULDEstimator.loss raises (tools/train.py must '
           'run the code under test)', _method(f'{EST}.loss', _raises),
           [T_TRAIN]),
    Mutant('heatmap_mse_ignores_target',
           'HeatmapMSELoss compares with zeros instead of its target',
           _method('mmuld.models.losses.heatmap_mse_loss:HeatmapMSELoss.'
                   'forward', _args_mapped(2, lambda t: t * 0)),
           [T_LOSSES, T_LOSS], learning=True),
    Mutant('elbo_ignores_target',
           "the ELBO's reconstruction term against zeros, not its target",
           _method('mmuld.models.losses.elbo_loss:ELBOLoss.forward',
                   _args_mapped(2, lambda t: t * 0)),
           [T_LOSSES, T_VAE, T_LOSS], learning=True),
    Mutant('vae_fed_zeros',
           'the VAE of the proxy task is fed zeros, not sigmoid(H)',
           _method(f'{VAE}.loss_proxy', _args_mapped(1, lambda h: h * 0)),
           [T_LOSS], learning=True),
    Mutant('pseudo_heatmap_stride_1',
           'pseudo-label heatmaps drawn with stride 1',
           _method(f'{DET}.get_targets', _args_mapped(3, lambda s: 1.0)),
           [T_LOSS], learning=True),
    Mutant('descriptor_loss_zero', "the descriptor head's loss times 0",
           _method(f'{DESC}.loss', scale_losses(0)), [T_LOSS, T_LOOP],
           learning=True),
    Mutant('latent_loss_zero', 'Eq. 3 (latent contrastive loss) times 0',
           _method(f'{VAE}.loss_pose', scale_losses(0)),
           [T_LOSS, T_LOOP, T_PIPE], learning=True),
    Mutant('latent_loss_constant_labels', 'Eq. 3 given constant pose labels',
           _method(f'{VAE}.loss_pose', _args_mapped(2, lambda u: u * 0)),
           [T_LOSS], learning=True),
    Mutant('bootstrap_identity_transforms',
           'bootstrapping pairs made with identity transforms',
           _function('mmuld.models.utils.affine:random_affine_pair',
                     _call_with(max_rotation=0.0, flip_prob=0.0,
                                scale_range=None, max_shift=0.0)),
           [T_LOSS], learning=True),
    Mutant('stage_entry_freezes_nothing', 'entering a stage freezes nothing',
           _function(STAGE, _stage_entry_freezes_nothing), [T_LOOP],
           learning=True),
    Mutant('stage_entry_never_sets_lr',
           'entering a stage never sets the learning rate',
           _function(STAGE, _stage_entry_lr(None)), [T_LOOP], learning=True),
    Mutant('stage_entry_lr_zero',
           'entering a stage sets the learning rate to 0',
           _function(STAGE, _stage_entry_lr(0.0)), [T_LOOP, T_PIPE],
           learning=True),
    Mutant('align_identity', 'align_pose_clusters returns the identity',
           _function(f'{ROUND}:align_pose_clusters', _identity_alignment),
           [T_ROUND, T_HOOK_DIST], learning=True),
    Mutant('kmeans_labels_equal',
           'exemplar assignment given all-equal K-means labels',
           _function('mmuld.clustering.exemplar:exemplar_assignment',
                     _args_mapped(2, lambda labels: labels * 0)),
           [T_ROUND, T_HOOK_DIST], learning=True),
    Mutant('landmarks_on_top_border',
           'every decoded landmark moved to y = 0',
           _method(f'{DECODER}.__call__', _landmarks_on_top_border),
           [T_INF, T_EQV, T_EXPORT]),
    Mutant('ridge_absolute',
           'ridge penalty absolute instead of relative to max(XcT Xc)',
           _function('mmuld.evaluation.functional.nme:_ridge_fit_predict',
                     _ridge_absolute), [T_NME, T_METRIC]),
    Mutant('equivariance_zeroshot_points_resampled',
           'the equivariance evaluation resamples ZeroShot pixels on the '
           'transformed input',
           _set_attr('mmuld.models.pose_estimators.zeroshot_estimator:'
                     'ZeroShotEstimator.samples_points', False), [T_EQV]),
    Mutant('equivariance_in_frame_filter_off',
           "the equivariance evaluation's in-frame filter disabled",
           _function('mmuld.models.utils.border:in_frame',
                     _all_in_frame), [T_EQV]),
    Mutant('corner_candidates_spread',
           'corner candidates replaced by points spread over the image',
           _function('mmuld.models.utils.interest_points:corner_candidates',
                     _spread_corners), [T_IPTS, T_CORNER], learning=True),
    Mutant('corner_rank_ignored',
           "a round's ranking ignores the corner response at the peaks",
           _function(f'{ROUND}:_rank_score', _margin_only), [T_CORNER]),
    Mutant('similarity_refinement_off',
           'dense exemplars are not refined on the similarity map',
           _method(f'{DECODER}.refine', _no_refinement), [T_DYN]),
    Mutant('anchors_ignored',
           "a later peak round re-estimates its centroids at their own "
           'peaks, not at the anchors where the landmarks were chosen',
           _function(f'{ROUND}:peak_pseudo_labels', _anchors_dropped),
           [T_DENSE]),
    Mutant('candidate_floor_off',
           'a round keeps no candidates below the score threshold (a '
           'detector still learning starves it)',
           _function('mmuld.models.utils.candidates:keep_at_least',
                     _no_floor), [T_CAND]),
    Mutant('mean_shape_from_test_shapes',
           'the mean-shape baseline averages the test shapes (a leak)',
           _function('mmuld.evaluation.learnability:mean_shape_baseline',
                     _mean_of_test_shapes), [T_LEARNABILITY]),
    Mutant('verdict_ignores_parts',
           'the verdict passes a method that misses ground-truth parts',
           _function('mmuld.evaluation.learnability:verdict',
                     _parts_always_found), [T_LEARNABILITY]),
    Mutant('diffusion_denoising_target_zeros',
           'the small diffusion model is trained to predict zeros, not the '
           'noise',
           _method('mmuld.diffusion.trainer:SmallDiffusionTrainer.'
                   '_unet_loss', _args_mapped(3, lambda n: n * 0)),
           [T_DIFFUSION]),
]


def by_name() -> Dict[str, Mutant]:
    """dict: The mutants by name."""
    return {m.name: m for m in MUTANTS}


def activate(name: str) -> Mutant:
    """Apply the mutant ``name`` to the imported package.

    Args:
        name (str): A mutant of :data:`MUTANTS`.

    Returns:
        Mutant: The mutant applied.

    Raises:
        KeyError: No such mutant.
        StaleMutant: Its target no longer exists.
    """
    mutants = by_name()
    if name not in mutants:
        raise KeyError(f'unknown mutant {name!r}; known: {sorted(mutants)}')
    mutants[name].apply()
    return mutants[name]
