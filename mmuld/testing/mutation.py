# Copyright (c) mmuld contributors. All rights reserved.
"""Run the tests with one semantic mutant active at a time.

A mutant (:mod:`mmuld.testing.mutants`) is activated in every Python
process of a test run, subprocesses such as ``tools/train.py`` included,
through a ``sitecustomize`` module on ``PYTHONPATH`` that reads
``MMULD_MUTANT``. The working tree is never modified. A mutant is
``killed`` when a test fails, ``survived`` when all pass, ``stale`` when
its target no longer exists and ``error`` when the run could not start or
timed out.
"""
import os
import os.path as osp
import subprocess
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from .mutants import MUTANTS, T_LEARN, Mutant, by_name

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# a mutant that fails to apply ends the process (Python would only warn
# about an error in sitecustomize and run the tests unmutated)
_SITECUSTOMIZE = '''\
import os
if os.environ.get('MMULD_MUTANT'):
    try:
        from mmuld.testing.mutants import activate
        activate(os.environ['MMULD_MUTANT'])
    except BaseException as exc:
        import sys
        sys.stderr.write(f'mutant {os.environ["MMULD_MUTANT"]}: {exc!r}\\n')
        os._exit(97)
'''


def _env(site_dir: str, mutant: Optional[str]) -> dict:
    env = dict(os.environ)
    env.pop('MMULD_MUTANT', None)
    if mutant:
        env['MMULD_MUTANT'] = mutant
    env['PYTHONPATH'] = os.pathsep.join(
        [site_dir, ROOT] +
        [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    env.setdefault('OMP_NUM_THREADS', '2')
    return env


def check_applies(python: str, site_dir: str, name: str) -> Optional[str]:
    """None when mutant ``name`` applies in a fresh interpreter, else the
    reason it does not."""
    out = subprocess.run(
        [python, '-c', 'import mmuld.testing.mutants as m; '
         f'm.activate({name!r}); print(m.__file__)'],
        capture_output=True, text=True, cwd=ROOT,
        env=_env(site_dir, None))
    if out.returncode:
        return (out.stderr.strip().splitlines() or ['?'])[-1]
    if not osp.realpath(out.stdout.strip()).startswith(
            osp.realpath(ROOT) + os.sep):
        return f'mmuld imported from {out.stdout.strip()}, not {ROOT}'
    return None


def run_pytest(python: str, site_dir: str, tests: Sequence[str],
               timeout: float, stop_first: bool,
               mutant: Optional[str] = None) -> Dict:
    """Run ``tests`` (not the slow ones) with ``mutant`` active.

    Returns:
        dict: ``rc`` (None on timeout), ``seconds``, ``summary`` (the
        last line), ``failed`` (test ids) and ``tail``.
    """
    cmd = [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-m',
           'not slow', '-W', 'ignore']
    if stop_first:
        cmd.append('-x')
    cmd += list(tests)
    start = time.time()
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT,
            env=_env(site_dir, mutant), timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(rc=None, seconds=time.time() - start, summary='timeout',
                    failed=[], tail='')
    lines = (out.stdout + out.stderr).strip().splitlines()
    failed = [ln.split(' ', 1)[1].split(' - ')[0] for ln in lines
              if ln.startswith(('FAILED ', 'ERROR '))]
    return dict(rc=out.returncode, seconds=time.time() - start,
                summary=lines[-1] if lines else '', failed=failed,
                tail='\n'.join(lines[-30:]))


def tests_of(mutant: Mutant, learning: bool = True,
             override: Optional[Sequence[str]] = None) -> List[str]:
    """The test files a mutant runs against."""
    if override:
        return list(override)
    tests = list(mutant.tests)
    if mutant.learning and learning and osp.isfile(osp.join(ROOT, T_LEARN)):
        tests.append(T_LEARN)
    return tests


def select(names: Optional[Sequence[str]]) -> List[Mutant]:
    """The mutants named (all when None)."""
    if not names:
        return list(MUTANTS)
    known = by_name()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f'unknown mutants {unknown}; see --list')
    return [known[n] for n in names]


def run_mutants(mutants: Sequence[Mutant],
                python: str,
                timeout: float = 900,
                baseline: bool = True,
                stop_first: bool = True,
                learning: bool = True,
                tests: Optional[Sequence[str]] = None,
                log=print) -> List[Dict]:
    """Run every mutant's tests with it active.

    Args:
        mutants (Sequence[Mutant]): The mutants.
        python (str): Interpreter that runs pytest.
        timeout (float): Seconds per mutant's test run.
        baseline (bool): First run the union of the tests unmutated; stop
            if they fail (the end-to-end learning test alone failing only
            leaves it out).
        stop_first (bool): Stop a mutant's run at its first failure.
        learning (bool): Add the end-to-end learning test to training
            mutants.
        tests (Sequence[str], optional): Run every mutant against these
            files instead.
        log (callable): Prints one line per event.

    Returns:
        list[dict]: Per mutant ``name``, ``what``, ``status`` and details.
    """
    results = []
    with tempfile.TemporaryDirectory(prefix='mmuld_mutants_') as site_dir:
        with open(osp.join(site_dir, 'sitecustomize.py'), 'w') as f:
            f.write(_SITECUSTOMIZE)
        if baseline:
            union = sorted({t for m in mutants
                            for t in tests_of(m, learning, tests)})
            base = run_pytest(python, site_dir, union, timeout * 2, False)
            log(f'baseline ({len(union)} files): {base["summary"]} '
                f'[{base["seconds"]:.0f} s]')
            if base['rc'] != 0 and base['failed'] and all(
                    f.startswith(T_LEARN) for f in base['failed']) \
                    and not tests:
                log(f'{T_LEARN} fails unmutated: left out of the mutant '
                    'runs')
                learning = False
            elif base['rc'] != 0:
                raise RuntimeError('the unmutated tests fail; fix them '
                                   'first:\n' + base.get('tail', ''))
        for m in mutants:
            res = dict(name=m.name, what=m.what)
            why = check_applies(python, site_dir, m.name)
            if why is not None:
                res.update(status='stale', detail=why)
                results.append(res)
                log(f'{m.name:<40} stale    {why}')
                continue
            files = tests_of(m, learning, tests)
            out = run_pytest(python, site_dir, files, timeout, stop_first,
                             mutant=m.name)
            status = {1: 'killed', 0: 'survived'}.get(out['rc'], 'error')
            res.update(status=status, tests=files, killed_by=out['failed'],
                       seconds=round(out['seconds'], 1),
                       summary=out['summary'])
            results.append(res)
            by = ', '.join(out['failed'][:2])
            log(f'{m.name:<40} {status:<8} {out["seconds"]:6.0f} s  '
                f'{by or out["summary"]}')
    return results
