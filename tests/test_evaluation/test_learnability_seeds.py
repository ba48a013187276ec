# Copyright (c) mmuld contributors. All rights reserved.
"""The summary of one benchmark run with several seeds, on known runs."""
import pytest

from mmuld.evaluation.learnability_seeds import (seeds_markdown,
                                                 summarize_seeds)

MEAN = 'mean shape (baseline)'


def _run(forward, parts, verdict_ok, backward=10.0):
    """A benchmark summary with one method and the mean-shape baseline."""
    acc = dict(zip(('eye', 'nose'), parts))
    worst = min(acc, key=acc.get)
    return dict(
        results={
            'D-ULD++': dict(
                forward=forward, backward=backward, part_accuracy=acc,
                worst_part=worst, worst_part_accuracy=acc[worst],
                all_parts_found=min(parts) >= 0.6),
            MEAN: dict(forward=40.0, backward=None),
        },
        verdict='D-ULD++: ... -> ' + ('discovers landmarks' if verdict_ok
                                      else 'NOT discovered: finds 1 of 2'))


def test_summary_of_known_runs():
    runs = {
        2: _run(8.0, (0.9, 0.2), False),
        0: _run(4.0, (1.0, 0.8), True),
        1: _run(6.0, (0.5, 0.7), False, backward=None),
    }
    s = summarize_seeds(runs)
    assert s['seeds'] == [0, 1, 2]
    assert s['part_names'] == ['eye', 'nose']
    assert s['discovered'] == 1
    d = s['methods']['D-ULD++']
    assert d['forward'] == dict(mean=6.0, min=4.0, max=8.0)
    # a run without a backward NME does not count in its mean
    assert d['backward'] == dict(mean=10.0, min=10.0, max=10.0)
    assert d['x_mean_shape']['max'] == pytest.approx(0.2)
    assert d['part_accuracy']['eye']['mean'] == pytest.approx(0.8)
    assert d['part_accuracy']['eye']['min'] == pytest.approx(0.5)
    assert d['part_accuracy']['nose']['min'] == pytest.approx(0.2)
    # worst parts of the runs: 0.8 (nose), 0.5 (eye), 0.2 (nose)
    assert d['worst_part_accuracy']['min'] == pytest.approx(0.2)
    assert d['worst_part_accuracy']['mean'] == pytest.approx(0.5)
    assert d['all_parts_found'] == 1
    mean = s['methods'][MEAN]
    assert 'part_accuracy' not in mean and 'x_mean_shape' not in mean
    assert mean['backward'] == dict(mean=None, min=None, max=None)
    table = seeds_markdown(s)
    assert table.startswith('3 runs, seeds 0, 1, 2')
    assert '| D-ULD++ | 6.00 (4.00-8.00) | 10.00 (10.00-10.00) | ' \
        '0.15 (max 0.20) | 80.0 % (50.0 %) | 56.7 % (20.0 %) | 20.0 % ' \
        '| 1 of 3 |' in table
    assert '| mean shape (baseline) | 40.00 (40.00-40.00) | n/a |' in table
    assert table.rstrip().endswith('"discovers landmarks" in 1 of 3 runs')


def test_summary_keeps_the_methods_of_every_run_only():
    a, b = _run(4.0, (1.0, 1.0), True), _run(5.0, (1.0, 1.0), True)
    b['results']['ZeroShot'] = dict(forward=9.0, backward=9.0)
    assert list(summarize_seeds({0: a, 1: b})['methods']) == [
        'D-ULD++', MEAN]
    with pytest.raises(ValueError, match='no run'):
        summarize_seeds({})


def test_seeds_must_be_distinct():
    from mmuld.evaluation.learnability_seeds import run_learnability_seeds
    for seeds in ([], [1, 1]):
        with pytest.raises(ValueError, match='distinct'):
            run_learnability_seeds(None, seeds)
