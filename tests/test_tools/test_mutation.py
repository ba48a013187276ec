# Copyright (c) mmuld contributors. All rights reserved.
"""Semantic mutants: every one applies, and an active one changes the
behaviour it names in the test process and in its subprocesses."""
import os
import subprocess
import sys

import pytest

from mmuld.testing import mutation
from mmuld.testing.mutants import MUTANTS, StaleMutant, activate

ROOT = mutation.ROOT


def _run(code, env):
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_every_mutant_applies():
    """One interpreter activates them all in turn: none is stale."""
    code = ('from mmuld.testing.mutants import MUTANTS, activate\n'
            'for m in MUTANTS:\n'
            '    activate(m.name)\n'
            'print(len(MUTANTS))')
    out = _run(code, mutation._env('/nonexistent', None))
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == len(MUTANTS) >= 20
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names)
    for m in MUTANTS:
        assert m.tests and all(
            os.path.isfile(os.path.join(ROOT, t)) for t in m.tests), m.name


def test_a_stale_mutant_is_reported(monkeypatch):
    from mmuld.testing import mutants
    from mmuld.testing.mutants import Mutant, _method
    stale = Mutant('stale', 'targets a method that does not exist',
                   _method(f'{mutants.EST}.no_such_method', lambda f: f),
                   ['tests'])
    monkeypatch.setattr(mutants, 'MUTANTS', [stale])
    with pytest.raises(StaleMutant, match='no_such_method'):
        activate('stale')


def test_active_mutant_reaches_subprocesses(tmp_path):
    """With the sitecustomize of a mutation run, the heatmap loss ignores
    its target in the process and in a process it starts; without the
    mutant the target counts."""
    (tmp_path / 'sitecustomize.py').write_text(mutation._SITECUSTOMIZE)
    probe = ('import torch\n'
             'from mmuld.models.losses.heatmap_mse_loss import '
             'HeatmapMSELoss\n'
             'x, t = torch.full((1, 1, 4, 4), -2.), torch.ones(1, 1, 4, 4)\n'
             'loss = HeatmapMSELoss()\n'
             'print(float(loss(x, t) - loss(x, t * 0)))\n')
    nested = ('import subprocess, sys\n'
              f'print(subprocess.run([sys.executable, "-c", {probe!r}], '
              'capture_output=True, text=True).stdout.strip())\n')
    env = mutation._env(str(tmp_path), 'heatmap_mse_ignores_target')
    for code in (probe, nested):
        out = _run(code, env)
        assert out.returncode == 0, out.stderr[-2000:]
        # the target is replaced by zeros
        assert float(out.stdout.split()[-1]) == 0.0
    out = _run(probe, mutation._env(str(tmp_path), None))
    assert float(out.stdout.split()[-1]) != 0.0
    # a mutant that cannot apply ends the process instead of running the
    # code unmutated
    out = _run(probe, mutation._env(str(tmp_path), 'no_such_mutant'))
    assert out.returncode == 97 and 'no_such_mutant' in out.stderr
