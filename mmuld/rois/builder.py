# Copyright (c) mmuld contributors. All rights reserved.
"""Registry and builder of RoI providers."""
from typing import Any, Union

from mmengine.registry import Registry

ROI_PROVIDERS = Registry(
    'roi provider', scope='mmuld', locations=['mmuld.rois'])


def build_roi_provider(cfg: Union[dict, Any]) -> Any:
    """Build a RoI provider from a config dict (or return an instance).

    Args:
        cfg (dict | BaseRoIProvider): Config with a ``type`` key naming a
            class registered in :data:`ROI_PROVIDERS`, or an already built
            provider.

    Returns:
        BaseRoIProvider: The provider.
    """
    if isinstance(cfg, dict):
        if 'type' not in cfg:
            raise ValueError(f'RoI provider config needs a "type" key: {cfg}')
        return ROI_PROVIDERS.build(cfg)
    if callable(cfg):
        return cfg
    raise TypeError('RoI provider must be a config dict or a callable, got '
                    f'{type(cfg).__name__}')
