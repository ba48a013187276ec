# Copyright (c) mmuld contributors. All rights reserved.
"""Shared pytest fixtures."""
import pytest


@pytest.fixture(scope='session')
def tiny_sd_dir(tmp_path_factory) -> str:
    """A tiny Stable Diffusion model saved in diffusers layout (built once)."""
    from mmuld.testing import build_tiny_sd
    return build_tiny_sd(str(tmp_path_factory.mktemp('tiny_sd')))
