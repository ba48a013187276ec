# Copyright (c) mmuld contributors. All rights reserved.
"""What a checkpoint is (method, stage, K, Q), and refusing a mismatch.

:class:`ULDRunStateHook` stores ``checkpoint['meta']['uld']`` =
``dict(method, stage, num_landmarks, num_pose_clusters)`` in every
checkpoint it sees saved. Checkpoints saved without it (by hand) are
described from their state dict instead: VAE weights mean D-ULD++, the
centroid buffers give K and Q. ``tools/test.py`` and
:func:`mmuld.apis.init_model` refuse a checkpoint whose description
contradicts the model the config builds, with one message naming both,
and one whose tensors do not fit the model (:mod:`.state_dict_check`).
"""
from typing import Optional

METHOD_NAMES = dict(duld='D-ULD', dldpp='D-ULD++', zeroshot='ZeroShot')


class CheckpointMismatchError(ValueError):
    """A checkpoint of another method, K or Q than the config's model."""


def _unwrap(model):
    return getattr(model, 'module', model)


def model_method(model) -> Optional[str]:
    """``'duld'``, ``'dldpp'`` or ``'zeroshot'`` for mmuld models, else
    None."""
    model = _unwrap(model)
    name = type(model).__name__
    if name == 'ZeroShotEstimator':
        return 'zeroshot'
    if hasattr(model, 'detector_head') and hasattr(model, 'pose_vae'):
        return 'dldpp' if model.pose_vae is not None else 'duld'
    return None


def configured_pose_clusters(cfg) -> Optional[int]:
    """Q of the config's clustering rounds (``train_cfg.clustering``;
    None: no two-stage clustering configured, i.e. no stage of
    ``model.stages`` has ``pseudo_labels='two_stage'``)."""
    from mmuld.models.pose_estimators.stages import StageSchedule
    if cfg is None:
        return None
    stages = (cfg.get('model', None) or {}).get('stages', None)
    if not stages or not StageSchedule(stages).uses('two_stage'):
        return None
    clustering = (cfg.get('train_cfg', None) or {}).get('clustering', None)
    return int((clustering or {}).get('num_pose_clusters', 10))


def uld_meta(model) -> dict:
    """The description stored in ``checkpoint['meta']['uld']``.

    Args:
        model (nn.Module): The model being saved.

    Returns:
        dict: ``method``, ``stage``, ``num_landmarks`` (K) and
        ``num_pose_clusters`` (Q of the stored pose centroids; None before
        the first two-stage clustering round).
    """
    model = _unwrap(model)
    pose = getattr(model, 'uld_pose_centroids', None)
    q = int(pose.shape[0]) if pose is not None and pose.numel() else None
    return dict(
        method=model_method(model),
        stage=getattr(model, 'stage', None),
        num_landmarks=int(getattr(model, 'num_landmarks', 0)) or None,
        num_pose_clusters=q)


def checkpoint_meta_of(checkpoint: dict) -> dict:
    """Describe a loaded checkpoint.

    Args:
        checkpoint (dict): A loaded mmengine checkpoint.

    Returns:
        dict: ``method``, ``stage``, ``num_landmarks`` and
        ``num_pose_clusters``; None where unknown. Taken from
        ``meta['uld']``, completed from the state dict.
    """
    meta = dict((checkpoint.get('meta') or {}).get('uld') or {})
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        state = {}
    keys = [k[7:] if k.startswith('module.') else k for k in state]
    out = dict(method=None, stage=None, num_landmarks=None,
               num_pose_clusters=None)
    if any(k.startswith('pose_vae.') for k in keys):
        out['method'] = 'dldpp'
    elif any(k.startswith('detector_head.') for k in keys):
        out['method'] = 'duld'
    for key, value in state.items():
        name = key[7:] if key.startswith('module.') else key
        dim = getattr(value, 'dim', lambda: 0)()
        if name == 'uld_centroids' and dim == 3 and value.numel():
            out['num_landmarks'] = int(value.shape[1])
        elif name == 'uld_pose_centroids' and dim == 2 and value.numel():
            out['num_pose_clusters'] = int(value.shape[0])
    out.update({k: v for k, v in meta.items() if v is not None})
    return out


def describe(meta: dict) -> str:
    """``'D-ULD++ (stage "dldpp", K=10, Q=2)'``."""
    method = METHOD_NAMES.get(meta.get('method'), 'an unknown method')
    parts = []
    if meta.get('stage'):
        parts.append(f'stage "{meta["stage"]}"')
    if meta.get('num_landmarks'):
        parts.append(f'K={meta["num_landmarks"]}')
    if meta.get('num_pose_clusters'):
        parts.append(f'Q={meta["num_pose_clusters"]}')
    return method + (f' ({", ".join(parts)})' if parts else '')


def expected_meta_of(model, cfg=None) -> dict:
    """What a checkpoint for ``model`` (built from ``cfg``) must be."""
    model = _unwrap(model)
    return dict(
        method=model_method(model),
        stage=None,
        num_landmarks=int(getattr(model, 'num_landmarks', 0)) or None,
        num_pose_clusters=configured_pose_clusters(cfg))


def check_checkpoint_meta(model,
                          checkpoint: dict,
                          filename: str,
                          cfg=None,
                          config_name: Optional[str] = None) -> dict:
    """Refuse a checkpoint that is not what the config's model expects.

    Compared for D-ULD / D-ULD++ models: the method, K, and Q when both
    sides have one. A checkpoint from an earlier stage of the same method
    is accepted. ZeroShot models accept any ULD checkpoint (they use its
    backbone and fit their own centroids). Then every tensor of the model
    must be in the checkpoint with its shape, and nothing else
    (:func:`~mmuld.utils.state_dict_check.check_state_dict_fits`).

    Args:
        model (nn.Module): The built model.
        checkpoint (dict): The loaded checkpoint.
        filename (str): Its path (for the message).
        cfg (Config, optional): The config (for the configured Q).
        config_name (str, optional): The config's name (for the message).

    Returns:
        dict: The checkpoint's description.

    Raises:
        CheckpointMismatchError: Naming the checkpoint, the config and what
            differs.
        CheckpointFitError: The checkpoint's tensors do not fit the model.
    """
    from .state_dict_check import check_state_dict_fits
    got = checkpoint_meta_of(checkpoint)
    want = expected_meta_of(model, cfg)
    if want['method'] in (None, 'zeroshot'):
        # ZeroShot fits its own centroids and takes the aggregator of any
        # trained ULD checkpoint (docs/zeroshot.md)
        if want['method'] == 'zeroshot':
            check_state_dict_fits(model, checkpoint, filename)
        return got
    diff = []
    if got['method'] and want['method'] and got['method'] != want['method']:
        diff.append('method')
    for key, name in (('num_landmarks', 'K'), ('num_pose_clusters', 'Q')):
        if got[key] and want[key] and got[key] != want[key]:
            diff.append(name)
    if diff:
        where = f' {config_name}' if config_name else ''
        raise CheckpointMismatchError(
            f'checkpoint {filename} is {describe(got)} but the config'
            f'{where} builds {describe(want)}: {" and ".join(diff)} differ. '
            'Use the config the checkpoint was trained with.')
    check_state_dict_fits(model, checkpoint, filename)
    return got
