# Copyright (c) mmuld contributors. All rights reserved.
from .equivariance_eval import (evaluate_equivariance,  # noqa: F401
                                transform_matrix)
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from .metrics import LandmarkDumpMetric, RegressionNMEMetric  # noqa: F401

__all__ = [
    'RegressionNMEMetric', 'LandmarkDumpMetric', 'evaluate_equivariance',
    'transform_matrix'
] + list(_functional_all)
