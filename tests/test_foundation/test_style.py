# Copyright (c) mmuld contributors. All rights reserved.
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_flake8_clean():
    """The code follows the flake8 settings of setup.cfg."""
    out = subprocess.run(
        [sys.executable, '-m', 'flake8', 'mmuld', 'tools', 'configs',
         'tests', 'projects'],
        cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
