# Copyright (c) mmuld contributors. All rights reserved.
"""mmuld: unsupervised landmark discovery with Stable Diffusion features."""
import mmcv
import mmengine
import mmpose
from mmengine.utils import digit_version

from .version import __version__

mmcv_minimum_version = '2.0.0'
mmcv_maximum_version = '2.2.0'
mmengine_minimum_version = '0.10.0'
mmengine_maximum_version = '1.0.0'
mmpose_minimum_version = '1.1.0'
mmpose_maximum_version = '1.4.0'


def _check(name: str, version: str, low: str, high: str) -> None:
    v = digit_version(version)
    assert digit_version(low) <= v < digit_version(high), (
        f'{name}=={version} is used but incompatible with mmuld '
        f'{__version__}. Please install {name}>={low}, <{high}.')


_check('mmcv', mmcv.__version__, mmcv_minimum_version, mmcv_maximum_version)
_check('mmengine', mmengine.__version__, mmengine_minimum_version,
       mmengine_maximum_version)
_check('mmpose', mmpose.__version__, mmpose_minimum_version,
       mmpose_maximum_version)

from .utils.checkpoint import register_checkpoint_safe_globals  # noqa: E402

register_checkpoint_safe_globals()

__all__ = ['__version__']
