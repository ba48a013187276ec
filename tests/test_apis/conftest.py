# Copyright (c) mmuld contributors. All rights reserved.
"""A trained tiny D-ULD++ checkpoint for the API tests."""
import pytest


@pytest.fixture(scope='session')
def uld_checkpoint(trained_dldpp):
    """The demo model trained through all four stages on the face samples
    (``trained_dldpp`` of tests/conftest.py): two pose clusters, aligned
    centroids."""
    return dict(
        config=trained_dldpp['config'],
        checkpoint=trained_dldpp['checkpoint'],
        cfg_options=dict(trained_dldpp['cfg_options']),
        num_landmarks=trained_dldpp['num_landmarks'])
