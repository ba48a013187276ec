# Copyright (c) mmuld contributors. All rights reserved.
"""Autocast queries that also accept devices autocast does not know."""
import contextlib
from typing import ContextManager

import torch

#: Device types ``torch.autocast`` accepts (others, e.g. ``meta`` used by
#: the FLOP counts of ``tools/analysis/benchmark_training.py``, never
#: autocast).
_AUTOCAST_DEVICES = ('cuda', 'cpu', 'xpu', 'mps', 'hpu', 'xla', 'mtia')


def autocast_dtype(device_type: str) -> 'torch.dtype | None':
    """The autocast dtype active for ``device_type``, or None.

    Args:
        device_type (str): A ``torch.device.type`` (``'cuda'``, ``'cpu'``,
            ``'meta'``, ...).

    Returns:
        torch.dtype | None: The autocast dtype if autocast is enabled for
        this device type, else None (always None for device types autocast
        does not support).
    """
    if device_type not in _AUTOCAST_DEVICES:
        return None
    if not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def autocast_off(device_type: str) -> ContextManager:
    """A context that disables autocast for ``device_type``.

    Args:
        device_type (str): A ``torch.device.type``.

    Returns:
        ContextManager: ``torch.autocast(device_type, enabled=False)``, or a
        no-op for device types autocast does not support.
    """
    if device_type not in _AUTOCAST_DEVICES:
        return contextlib.nullcontext()
    return torch.autocast(device_type, enabled=False)
