# Copyright (c) mmuld contributors. All rights reserved.
from .landmark_dump_metric import LandmarkDumpMetric  # noqa: F401
from .regression_nme_metric import RegressionNMEMetric

__all__ = ['RegressionNMEMetric']
