# Copyright (c) mmuld contributors. All rights reserved.
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from .metrics import RegressionNMEMetric

__all__ = ['RegressionNMEMetric'] + list(_functional_all)
