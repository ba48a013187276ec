# Copyright (c) mmuld contributors. All rights reserved.
"""Make mmengine checkpoints load under ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine
0.10.x calls ``torch.load`` without that argument, so ``load_from`` and
``--resume`` fail on the objects mmengine itself stores in checkpoints
(numpy scalars and arrays in ``meta``/``dataset_meta``, ``HistoryBuffer``
objects in the message hub state). Instead of turning the safety check off,
:func:`register_checkpoint_safe_globals` adds exactly those types to torch's
allow-list of safe globals.

``HistoryBuffer`` also pickles its statistics methods (``min``, ``max``,
``mean``, ``current``) as ``getattr(HistoryBuffer, name)``, and ``getattr``
must never be allow-listed. Those four are restored by
``HistoryBuffer.__setstate__`` anyway, so they are left out of the pickle
(custom statistics registered by users are still saved).
"""
from typing import List

import numpy as np
import torch

_REGISTERED = False


def _numpy_globals() -> List[object]:
    """Return the numpy callables/classes needed to unpickle arrays."""
    core = getattr(np, '_core', None) or np.core
    multiarray = core.multiarray
    out = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [
            getattr(dtypes, n) for n in dir(dtypes)
            if n.endswith('DType') and isinstance(getattr(dtypes, n), type)
        ]
    return out


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer.__getstate__`` without its built-in methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    self.__dict__.pop('statistics_methods', None)
    state = dict(self.__dict__)
    custom = {
        k: v
        for k, v in self._statistics_methods.items()
        if getattr(HistoryBuffer, k, None) is not v
    }
    if custom:
        state['statistics_methods'] = custom
    return state


def register_checkpoint_safe_globals() -> None:
    """Allow-list the non-tensor types that mmengine checkpoints contain.

    Safe to call many times; does nothing on torch < 2.4 (no allow-list).
    """
    global _REGISTERED
    if _REGISTERED or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    # `bytes` rebuilds the raw buffers of pickled numpy arrays
    torch.serialization.add_safe_globals(_numpy_globals() +
                                         [HistoryBuffer, bytes])
    _REGISTERED = True
