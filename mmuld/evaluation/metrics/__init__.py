# Copyright (c) mmuld contributors. All rights reserved.
from .landmark_dump_metric import LandmarkDumpMetric
from .regression_nme_metric import RegressionNMEMetric

__all__ = ['RegressionNMEMetric', 'LandmarkDumpMetric']
