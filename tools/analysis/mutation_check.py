# Copyright (c) mmuld contributors. All rights reserved.
"""Semantic mutation check of the training system (not part of CI).

Each mutant (:mod:`mmuld.testing.mutants`) patches one function, method or
attribute of the package so that one behaviour of the method breaks (a
loss that no longer trains, a stage that freezes nothing, a clustering
that returns constant labels, ...). The tests that should notice it run
with it active (:mod:`mmuld.testing.mutation`); the working tree is never
modified.

Usage::

    .venv/bin/python tools/analysis/mutation_check.py            # all
    .venv/bin/python tools/analysis/mutation_check.py --list
    .venv/bin/python tools/analysis/mutation_check.py \\
        --only stage_entry_lr_zero ridge_absolute --out mutants.json

The exit status is 0 only when every mutant run was killed.
"""
import argparse
import json
import sys
from typing import Dict, List, Optional

from mmuld.testing.mutants import T_LEARN
from mmuld.testing.mutation import run_mutants, select


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Run the tests with one semantic mutant active at a '
        'time and report which mutants they kill')
    parser.add_argument(
        '--only', nargs='+', default=None, help='names of mutants to run')
    parser.add_argument(
        '--list', action='store_true', help='list the mutants and exit')
    parser.add_argument(
        '--python', default=sys.executable,
        help='interpreter that runs pytest (default: this one)')
    parser.add_argument(
        '--timeout', type=float, default=900,
        help='seconds per test run (default 900)')
    parser.add_argument(
        '--skip-baseline', action='store_true',
        help='do not run the unmutated tests first')
    parser.add_argument(
        '--all-tests', action='store_true',
        help='run every test of a mutant (default: stop at the first '
        'failure, -x)')
    parser.add_argument(
        '--tests', nargs='+', default=None,
        help="run every mutant against these test files instead of its own")
    parser.add_argument(
        '--no-learning', action='store_true',
        help=f'do not add {T_LEARN} to the training mutants')
    parser.add_argument('--out', default=None, help='write a JSON report')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    mutants = select(args.only)
    if args.list:
        for m in mutants:
            print(f'{m.name:<40} {m.what}')
        return []
    results = run_mutants(
        mutants, args.python, timeout=args.timeout,
        baseline=not args.skip_baseline, stop_first=not args.all_tests,
        learning=not args.no_learning, tests=args.tests,
        log=lambda line: print(line, flush=True))
    counts = {s: sum(r['status'] == s for r in results)
              for s in ('killed', 'survived', 'stale', 'error')}
    print('; '.join(f'{k}: {v}' for k, v in counts.items()))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    res = main()
    sys.exit(1 if any(r['status'] != 'killed' for r in res) else 0)
