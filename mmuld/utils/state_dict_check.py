# Copyright (c) mmuld contributors. All rights reserved.
"""Refuse a checkpoint whose tensors do not fit the model.

mmengine loads ``load_from`` checkpoints non-strictly: a state dict of
another config, or of other names, loads nothing and the run goes on with
random weights. :func:`check_state_dict_fits` compares the checkpoint's
tensors with the model's own after loading and stops with one message that
names the file and the first offending keys. Declared exceptions:

* Stable Diffusion weights: they come from ``model.backbone.pretrained``
  and are not part of the model's state dict (keys under ``backbone.`` that
  start with ``_sd.``, ``sd.``, ``unet.``, ``vae.`` or ``text_encoder.``
  in a checkpoint are dropped by the backbone itself);
* buffers whose shape follows the data (centroids, the pseudo-label bank):
  any shape is accepted, and a checkpoint saved before the first
  clustering round may lack them;
* a ZeroShot model takes only the backbone of a ULD checkpoint (it fits
  its own centroids): only the ``backbone.`` keys are compared, and the
  checkpoint must have them.
"""
from typing import Dict, List, Optional

from torch import nn

#: Buffers whose shape depends on the data, under the model's root.
DATA_SHAPED_BUFFERS = ('uld_centroids', 'uld_pose_centroids', 'uld_pl_',
                       'zs_centroids')
#: Stable Diffusion weights under the backbone, loaded from ``pretrained``.
SD_PREFIXES = tuple('backbone.' + p for p in ('_sd.', 'sd.', 'unet.', 'vae.',
                                              'text_encoder.'))
_SHOWN = 5


class CheckpointFitError(ValueError):
    """A checkpoint with missing, unexpected or mis-shaped tensors."""


def _strip(key: str) -> str:
    return key[7:] if key.startswith('module.') else key


def _shape(value) -> Optional[tuple]:
    return tuple(value.shape) if hasattr(value, 'shape') else None


def state_dict_mismatch(model: nn.Module,
                        state: Dict[str, object],
                        backbone_only: bool = False) -> Dict[str, List]:
    """Keys of ``state`` that do not fit ``model``.

    Args:
        model (nn.Module): The built model (unwrapped).
        state (dict): The checkpoint's state dict.
        backbone_only (bool): Compare only the ``backbone.`` keys (and
            count a checkpoint without any as all missing).

    Returns:
        dict: ``missing``, ``unexpected`` (key lists) and ``shape``
        (``(key, checkpoint shape, model shape)`` tuples).
    """
    own = {k: _shape(v) for k, v in model.state_dict().items()}
    got = {_strip(k): _shape(v) for k, v in state.items()
           if not _strip(k).startswith(SD_PREFIXES)}
    if backbone_only:
        own = {k: v for k, v in own.items() if k.startswith('backbone.')}
        got = {k: v for k, v in got.items() if k.startswith('backbone.')}

    def data_shaped(key: str) -> bool:
        return key.startswith(DATA_SHAPED_BUFFERS)

    missing = [k for k in own if k not in got and not data_shaped(k)]
    unexpected = [] if backbone_only else [k for k in got if k not in own]
    shape = [(k, got[k], own[k]) for k in own
             if k in got and not data_shaped(k) and got[k] != own[k]]
    return dict(missing=missing, unexpected=unexpected, shape=shape)


def check_state_dict_fits(model: nn.Module, checkpoint: dict,
                          filename: str) -> None:
    """Stop when a checkpoint's tensors do not fit the model.

    Args:
        model (nn.Module): The built model.
        checkpoint (dict): The loaded checkpoint (or a bare state dict).
        filename (str): Its path (for the message).

    Raises:
        CheckpointFitError: Naming the file and the first offending keys.
    """
    from .checkpoint_meta import model_method
    model = getattr(model, 'module', model)
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointFitError(
            f'checkpoint {filename} holds no state dict')
    bad = state_dict_mismatch(
        model, state, backbone_only=model_method(model) == 'zeroshot')
    if not any(bad.values()):
        return
    parts = []
    for name in ('missing', 'unexpected'):
        keys = bad[name]
        if keys:
            more = f' (+{len(keys) - _SHOWN} more)' \
                if len(keys) > _SHOWN else ''
            parts.append(f'{len(keys)} {name} ({", ".join(keys[:_SHOWN])}'
                         f'{more})')
    if bad['shape']:
        shown = ', '.join(f'{k} {tuple(a)} vs {tuple(b)}'
                          for k, a, b in bad['shape'][:_SHOWN])
        parts.append(f'{len(bad["shape"])} of another shape ({shown}; '
                     'checkpoint vs model)')
    raise CheckpointFitError(
        f'checkpoint {filename} does not fit the model '
        f'{type(model).__name__}: {"; ".join(parts)}. Use the config the '
        'checkpoint was trained with.')
