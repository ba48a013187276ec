# Copyright (c) mmuld contributors. All rights reserved.
"""One benchmark, several training seeds: how much of a figure is the run.

The paper reports its figures averaged over 5 evaluations. On the CPU
worlds of the learnability benchmark one run's per-part accuracy moves by
tens of points with the training seed alone (docs/methods.md, "How much
one run varies"), so a change judged on one run can be noise. This module
turns the summaries of the same benchmark run with several seeds into one:
per method the mean and range of the NME, every part's mean and lowest
accuracy, and in how many runs every part was found and the verdict said
"discovers landmarks".
"""
import dataclasses
import json
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

MEAN_SHAPE = 'mean shape (baseline)'


def _stats(values: Sequence[Optional[float]]) -> Dict[str, Optional[float]]:
    """Mean, min and max of the values that exist (all None: None, which
    ``seeds.json`` keeps as null)."""
    v = np.asarray([np.nan if x is None else x for x in values], float)
    if np.isnan(v).all():
        return dict(mean=None, min=None, max=None)
    return dict(mean=float(np.nanmean(v)), min=float(np.nanmin(v)),
                max=float(np.nanmax(v)))


def summarize_seeds(summaries: Mapping[int, dict]) -> dict:
    """Combine the ``learnability.json`` summaries of several seeds.

    Args:
        summaries (Mapping[int, dict]): seed -> the summary that
            :func:`~mmuld.evaluation.learnability_run.run_learnability`
            returned for it (``results``, ``verdict``).

    Returns:
        dict: ``seeds``, ``part_names`` and ``methods``: per method present
        in every run, ``forward`` and ``backward`` (``mean`` / ``min`` /
        ``max`` over the runs), ``x_mean_shape`` (the forward NME over the
        mean shape's, same keys), and for methods with part figures
        ``part_accuracy`` (name -> ``mean`` / ``min`` / ``max``),
        ``worst_part_accuracy`` (the run's worst part, over the runs) and
        ``all_parts_found`` (runs in which every part was found);
        ``discovered`` counts the runs whose verdict says "discovers
        landmarks".
    """
    if not summaries:
        raise ValueError('no run to summarize')
    seeds = sorted(summaries)
    runs = [summaries[s] for s in seeds]
    first = runs[0]['results']
    methods = [m for m in first if all(m in r['results'] for r in runs)]
    out_methods = {}
    names: List[str] = []
    for m in methods:
        rows = [r['results'][m] for r in runs]
        entry = dict(
            forward=_stats([x['forward'] for x in rows]),
            backward=_stats([x.get('backward') for x in rows]))
        if m != MEAN_SHAPE and all(MEAN_SHAPE in r['results'] for r in runs):
            entry['x_mean_shape'] = _stats([
                x['forward'] / r['results'][MEAN_SHAPE]['forward']
                for x, r in zip(rows, runs)
            ])
        if all(x.get('part_accuracy') for x in rows):
            names = list(rows[0]['part_accuracy'])
            entry['part_accuracy'] = {
                n: _stats([x['part_accuracy'][n] for x in rows])
                for n in names
            }
            entry['worst_part_accuracy'] = _stats(
                [x['worst_part_accuracy'] for x in rows])
            entry['all_parts_found'] = int(
                sum(bool(x.get('all_parts_found')) for x in rows))
        out_methods[m] = entry
    discovered = sum('-> discovers landmarks' in (r.get('verdict') or '')
                     for r in runs)
    return dict(seeds=seeds, part_names=names, methods=out_methods,
                discovered=int(discovered))


def seeds_markdown(summary: dict) -> str:
    """The table of :func:`summarize_seeds`: per method the mean forward
    and backward NME with their range, x the mean shape (mean and
    largest), every part's mean accuracy with its lowest, the lowest worst
    part and the runs with every part found."""
    n = len(summary['seeds'])
    names = summary['part_names']
    head = ['method', 'forward NME %', 'backward NME %', 'x mean shape'] + [
        f'{p} acc.' for p in names
    ] + ['worst part, lowest', 'all parts found']
    lines = [
        f'{n} runs, seeds {", ".join(str(s) for s in summary["seeds"])}: '
        'mean (lowest-highest); part accuracy: mean (lowest)', '',
        '| ' + ' | '.join(head) + ' |', '| --- ' * len(head) + '|'
    ]

    def rng(s: dict) -> str:
        if s['mean'] is None:
            return 'n/a'
        return f'{s["mean"]:.2f} ({s["min"]:.2f}-{s["max"]:.2f})'

    for m, e in summary['methods'].items():
        row = [m, rng(e['forward']), rng(e['backward'])]
        x = e.get('x_mean_shape')
        row.append(f'{x["mean"]:.2f} (max {x["max"]:.2f})' if x else 'n/a')
        parts = e.get('part_accuracy')
        for p in names:
            row.append(f'{100 * parts[p]["mean"]:.1f} % '
                       f'({100 * parts[p]["min"]:.1f} %)' if parts else 'n/a')
        if parts:
            row += [f'{100 * e["worst_part_accuracy"]["min"]:.1f} %',
                    f'{e["all_parts_found"]} of {n}']
        else:
            row += ['n/a', 'n/a']
        lines.append('| ' + ' | '.join(row) + ' |')
    lines += ['', f'verdict "discovers landmarks" in {summary["discovered"]}'
              f' of {n} runs']
    return '\n'.join(lines) + '\n'


def run_learnability_seeds(opts, seeds: Sequence[int]) -> dict:
    """Run the benchmark once per training seed and summarize the runs.

    Each run is :func:`~mmuld.evaluation.learnability_run.run_learnability`
    with ``randomness.seed`` set (in both configs) and its own work folder
    ``WORK_DIR/seed_S``; the summary (:func:`summarize_seeds`) is written to
    ``WORK_DIR/seeds.json`` and ``seeds.md`` and printed.

    Args:
        opts (LearnabilityOptions): The benchmark's options.
        seeds (Sequence[int]): The training seeds, at least one.

    Returns:
        dict: The summary, with ``runs`` (seed -> the run's work folder).
    """
    # the benchmark imports the whole stack: at call time
    from .learnability_run import run_learnability
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f'seeds must be distinct and at least one, got '
                         f'{seeds}')
    work = osp.abspath(opts.work_dir)
    os.makedirs(work, exist_ok=True)
    summaries, dirs = {}, {}
    for i, seed in enumerate(seeds):
        print(f'\n=== seed {seed} ({i + 1} of {len(seeds)}) ===')
        dirs[seed] = osp.join(work, f'seed_{seed}')
        summaries[seed] = run_learnability(
            dataclasses.replace(
                opts, work_dir=dirs[seed],
                cfg_options={**opts.cfg_options, 'randomness.seed': seed}))
    summary = summarize_seeds(summaries)
    summary['runs'] = dirs
    table = seeds_markdown(summary)
    with open(osp.join(work, 'seeds.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    with open(osp.join(work, 'seeds.md'), 'w') as f:
        f.write(f'# Learnability on {opts.data_root}, {len(seeds)} '
                f'training seeds\n\n{table}')
    print('\n' + table)
    print(f'table: {osp.join(work, "seeds.md")}, figures: '
          f'{osp.join(work, "seeds.json")}')
    return summary
