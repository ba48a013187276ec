# Copyright (c) mmuld contributors. All rights reserved.
"""Semantic mutation check of the training system (not part of CI).

Each mutant is a small text patch to one file of the package that breaks
one behaviour of the method (a loss that no longer trains, a hook that
freezes nothing, a clustering that returns constant labels, ...). The
script copies the repository into a temporary folder (never touching the
working tree), applies one mutant at a time to the copy, runs the test
files that should notice it with the copy first on ``PYTHONPATH`` and
reports whether the mutant was killed (some test failed) or survived.

Usage::

    .venv/bin/python tools/analysis/mutation_check.py            # all
    .venv/bin/python tools/analysis/mutation_check.py --list
    .venv/bin/python tools/analysis/mutation_check.py \\
        --only stage_entry_lr_zero ridge_absolute --out mutants.json

A mutant whose text no longer matches its file (the code moved on) is
reported as ``stale``; a test run that cannot even start (collection
error, timeout) as ``error``. The unmutated copy is run first on the union
of the selected test files; if it fails, the results are meaningless and
the script stops (``--skip-baseline`` skips that run).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EST = 'mmuld/models/pose_estimators/uld_estimator.py'
STAGE = 'mmuld/engine/stage_entry.py'
ROUND = 'mmuld/clustering/clustering_round.py'
EQV = 'mmuld/evaluation/equivariance_eval.py'
T_LOSS = 'tests/test_models/test_uld_estimator_loss.py'
T_LOOP = 'tests/test_engine/test_uld_train_loop.py'
T_ROUND = 'tests/test_clustering/test_clustering_round.py'
T_PIPE = 'tests/test_engine/test_pipeline_resume.py'
T_LOSSES = 'tests/test_models/test_losses/test_elbo_mse_losses.py'
T_VAE = 'tests/test_models/test_necks/test_pose_vae_neck.py'
T_EQV = 'tests/test_evaluation/test_equivariance_eval.py'
T_INF = 'tests/test_apis/test_uld_inferencer.py'
T_EXPORT = 'tests/test_tools/test_export.py'
T_NME = 'tests/test_evaluation/test_nme_functional.py'
T_METRIC = 'tests/test_evaluation/test_regression_nme_metric.py'
T_HOOK_DIST = 'tests/test_engine/test_clustering_rounds_dist.py'
T_TRAIN = 'tests/test_engine/test_train_tool.py'
# the end-to-end learning test (run with every training mutant if present)
T_LEARN = 'tests/test_engine/test_learning.py'

#: The mutants. ``old`` must occur exactly once in
#: ``file``; ``tests`` are the files expected to kill the mutant;
#: ``learning`` adds the end-to-end learning test when it exists.
MUTANTS: List[Dict] = [
    dict(
        name='all_losses_zero',
        what='every loss of ULDEstimator.loss multiplied by 0',
        file=EST,
        old='    def loss(self, inputs: Tensor, data_samples: SampleList) '
        '-> dict:\n',
        new='    def loss(self, inputs, data_samples):\n'
        '        return {k: v * 0 for k, v in\n'
        '                self._loss_unmutated(inputs, data_samples).items()}'
        '\n\n    def _loss_unmutated(self, inputs: Tensor,\n'
        '                        data_samples: SampleList) -> dict:\n',
        tests=[T_LOSS, T_LOOP, T_PIPE],
        learning=True),
    dict(
        name='loss_raises',
        what='ULDEstimator.loss raises (tools/train.py must run the tree '
        'under test)',
        file=EST,
        old='    def loss(self, inputs: Tensor, data_samples: SampleList) '
        '-> dict:\n',
        new='    def loss(self, inputs, data_samples):\n'
        "        raise RuntimeError('mutant')\n\n"
        '    def _loss_unmutated(self, inputs: Tensor,\n'
        '                        data_samples: SampleList) -> dict:\n',
        tests=[T_TRAIN],
        learning=False),
    dict(
        name='heatmap_mse_ignores_target',
        what='HeatmapMSELoss compares with zeros instead of its target',
        file='mmuld/models/losses/heatmap_mse_loss.py',
        old="F.mse_loss(output, target, reduction='none')",
        new="F.mse_loss(output, target * 0, reduction='none')",
        tests=[T_LOSSES, T_LOSS],
        learning=True),
    dict(
        name='elbo_bce_ignores_target',
        what="the ELBO's BCE against zeros instead of its target",
        file='mmuld/models/losses/elbo_loss.py',
        old='recon, target, reduction=',
        new='recon, target * 0, reduction=',
        tests=[T_LOSSES, T_VAE, T_LOSS],
        learning=True),
    dict(
        name='vae_fed_zeros',
        what='the VAE of the proxy task is fed zeros, not sigmoid(H)',
        file=EST,
        old='out = self.pose_vae(vae_in)',
        new='out = self.pose_vae(vae_in * 0)',
        tests=[T_LOSS],
        learning=True),
    dict(
        name='pseudo_heatmap_stride_1',
        what='pseudo-label heatmaps drawn with stride 1',
        file=EST,
        old='heat.shape[-2:], self.stride, sigma)',
        new='heat.shape[-2:], 1.0, sigma)',
        tests=[T_LOSS],
        learning=True),
    dict(
        name='descriptor_loss_zero',
        what='descriptor contrastive loss multiplied by 0',
        file=EST,
        old="losses['loss_descriptor'] = self.loss_descriptor(",
        new="losses['loss_descriptor'] = 0 * self.loss_descriptor(",
        tests=[T_LOSS, T_LOOP],
        learning=True),
    dict(
        name='latent_loss_zero',
        what='Eq. 3 (latent contrastive loss) multiplied by 0',
        file=EST,
        old="losses['loss_latent'] = self.loss_latent(",
        new="losses['loss_latent'] = 0 * self.loss_latent(",
        tests=[T_LOSS, T_LOOP, T_PIPE],
        learning=True),
    dict(
        name='latent_loss_constant_labels',
        what='Eq. 3 given constant pose labels',
        file=EST,
        old="self.loss_latent(mu, pl['pose_labels'])",
        new="self.loss_latent(mu, pl['pose_labels'] * 0)",
        tests=[T_LOSS],
        learning=True),
    dict(
        name='bootstrap_identity_transforms',
        what='bootstrapping pairs made with identity transforms',
        file=EST,
        old="max_rotation=cfg.get('max_rotation', 30.0),\n"
        "            flip_prob=cfg.get('flip_prob', 0.5),\n"
        "            scale_range=cfg.get('boot_scale_range'),\n"
        "            max_shift=cfg.get('boot_max_shift', 0.0))",
        new='max_rotation=0.0,\n            flip_prob=0.0)',
        tests=[T_LOSS],
        learning=True),
    dict(
        name='stage_entry_freezes_nothing',
        what='enter_stage freezes nothing',
        file=STAGE,
        old='param.requires_grad_(train)',
        new='param.requires_grad_(True)',
        tests=[T_LOOP],
        learning=True),
    dict(
        name='stage_entry_never_sets_lr',
        what='enter_stage never sets the learning rate',
        file=STAGE,
        old="group['lr'] = stage.lr",
        new='pass',
        tests=[T_LOOP],
        learning=True),
    dict(
        name='stage_entry_lr_zero',
        what='enter_stage sets the learning rate to 0',
        file=STAGE,
        old="group['lr'] = stage.lr",
        new="group['lr'] = 0.0",
        tests=[T_LOOP, T_PIPE],
        learning=True),
    dict(
        name='align_identity',
        what='align_pose_clusters returns the identity',
        file=ROUND,
        old='perm[i, torch.as_tensor(cols)] = torch.as_tensor(rows)',
        new='perm[i] = torch.arange(k)',
        tests=[T_ROUND, T_HOOK_DIST],
        learning=True),
    dict(
        name='kmeans_labels_equal',
        what='K-means labels all equal in the clustering round',
        file=ROUND,
        old='descriptors, image_ids, glob.labels, glob.centroids,',
        new='descriptors, image_ids, glob.labels * 0, glob.centroids,',
        tests=[T_ROUND, T_HOOK_DIST],
        learning=True),
    dict(
        name='landmarks_on_top_border',
        what='every discovered landmark moved to y = 0',
        file=EST,
        old="        res['pose_labels'] = pose\n",
        new="        res['keypoints'][..., 1] = 0\n"
        "        res['pose_labels'] = pose\n",
        tests=[T_INF, T_EQV, T_EXPORT],
        learning=False),
    dict(
        name='ridge_absolute',
        what='ridge penalty absolute instead of relative to max(XcT Xc)',
        file='mmuld/evaluation/functional/nme.py',
        old='Ridge(alpha=alpha_rel * gram_max,',
        new='Ridge(alpha=alpha_rel,',
        tests=[T_NME, T_METRIC],
        learning=False),
    dict(
        name='equivariance_zeroshot_branch_off',
        what="the equivariance evaluation's ZeroShot branch disabled",
        file=EQV,
        old='    if isinstance(model, ZeroShotEstimator):\n',
        new='    if False:\n',
        tests=[T_EQV],
        learning=False),
    dict(
        name='equivariance_in_frame_filter_off',
        what="the equivariance evaluation's in-frame filter disabled",
        file=EQV,
        old='valid = both & in_frame',
        new='valid = both',
        tests=[T_EQV],
        learning=False),
    dict(
        name='corner_candidates_spread',
        what='corner candidates replaced by points spread over the image',
        file='mmuld/models/utils/interest_points.py',
        old='        pts = pts.reshape(-1, 2)[:num]\n',
        new='        pts = np.random.default_rng(i).uniform(\n'
        '            8, min(h, w) - 8, (num, 2)).astype(np.float32)\n',
        tests=['tests/test_models/test_interest_points.py',
               'tests/test_clustering/test_corner_round.py'],
        learning=True),
    dict(
        name='corner_rank_ignored',
        what="a round's ranking ignores the corner response at the peaks",
        file=ROUND,
        old="    if 'saliency' not in peaks:\n",
        new='    if True:\n',
        tests=['tests/test_clustering/test_corner_round.py'],
        learning=False),
]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Apply semantic mutants to a copy of the repository '
        'and report which ones the tests kill')
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
        help='run every mutant against these test files instead of its own '
        'list (e.g. only tests/test_engine/test_learning.py)')
    parser.add_argument(
        '--no-learning', action='store_true',
        help=f'do not add {T_LEARN} to the training mutants')
    parser.add_argument('--out', default=None, help='write a JSON report')
    return parser.parse_args(argv)


def _copy_repo(dst: str) -> str:
    """Copy the sources the tests need (no venv, git or work dirs)."""
    ignore = shutil.ignore_patterns('.git', '.venv', 'work_dirs',
                                    '__pycache__', '*.egg-info',
                                    '.pytest_cache', '.mypy_cache')
    repo = osp.join(dst, 'repo')
    shutil.copytree(ROOT, repo, ignore=ignore)
    return repo


def _env(repo: str) -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [repo] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                  if p])
    env.setdefault('OMP_NUM_THREADS', '2')
    return env


def _check_import(python: str, repo: str) -> None:
    """The copy, not the editable install, must be the imported mmuld."""
    out = subprocess.run(
        [python, '-c', 'import mmuld; print(mmuld.__file__)'],
        capture_output=True, text=True, cwd=repo, env=_env(repo))
    path = out.stdout.strip()
    if out.returncode or not osp.realpath(path).startswith(
            osp.realpath(repo) + os.sep):
        raise RuntimeError(
            f'the copy {repo} is not the imported mmuld ({path!r}, '
            f'{out.stderr.strip()[-500:]})')


def _pytest(python: str, repo: str, tests: List[str], timeout: float,
            stop_first: bool) -> Dict:
    cmd = [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-m',
           'not slow', '-W', 'ignore']
    if stop_first:
        cmd.append('-x')
    cmd += tests
    start = time.time()
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, cwd=repo, env=_env(repo),
            timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(rc=None, seconds=time.time() - start, summary='timeout',
                    failed=[])
    lines = (out.stdout + out.stderr).strip().splitlines()
    failed = [ln.split(' ', 1)[1].split(' - ')[0] for ln in lines
              if ln.startswith(('FAILED ', 'ERROR '))]
    return dict(rc=out.returncode, seconds=time.time() - start,
                summary=lines[-1] if lines else '', failed=failed,
                tail='\n'.join(lines[-30:]))


def _tests_of(mutant: Dict, repo: str, args: argparse.Namespace
              ) -> List[str]:
    if args.tests:
        return list(args.tests)
    tests = list(mutant['tests'])
    if mutant.get('learning') and not args.no_learning and osp.isfile(
            osp.join(repo, T_LEARN)):
        tests.append(T_LEARN)
    return tests


def run(args: argparse.Namespace) -> List[Dict]:
    mutants = MUTANTS
    if args.only:
        unknown = set(args.only) - {m['name'] for m in MUTANTS}
        if unknown:
            raise ValueError(f'unknown mutants {sorted(unknown)}; see --list')
        mutants = [m for m in MUTANTS if m['name'] in args.only]
    results = []
    with tempfile.TemporaryDirectory(prefix='mmuld_mutants_') as tmp:
        repo = _copy_repo(tmp)
        _check_import(args.python, repo)
        print(f'copy of {ROOT} in {repo}', flush=True)
        if not args.skip_baseline:
            tests = sorted(
                {t for m in mutants for t in _tests_of(m, repo, args)})
            base = _pytest(args.python, repo, tests, args.timeout * 2, False)
            print(f'baseline ({len(tests)} files): {base["summary"]} '
                  f'[{base["seconds"]:.0f} s]', flush=True)
            if base['rc'] != 0 and base['failed'] and all(
                    f.startswith(T_LEARN) for f in base['failed']) and \
                    not args.tests:
                print(f'{T_LEARN} fails unmutated: left out of the mutant '
                      'runs', flush=True)
                args.no_learning = True
            elif base['rc'] != 0:
                raise RuntimeError(
                    'the unmutated tests fail; fix them first:\n' +
                    base.get('tail', ''))
        for m in mutants:
            path = osp.join(repo, m['file'])
            with open(path, encoding='utf-8') as f:
                original = f.read()
            count = original.count(m['old'])
            res = dict(name=m['name'], what=m['what'], file=m['file'])
            if count != 1:
                res.update(status='stale', detail=f'patch text found {count} '
                           'times')
                results.append(res)
                print(f"{m['name']:<36} stale ({count} matches)", flush=True)
                continue
            with open(path, 'w', encoding='utf-8') as f:
                f.write(original.replace(m['old'], m['new']))
            try:
                tests = _tests_of(m, repo, args)
                out = _pytest(args.python, repo, tests, args.timeout,
                              not args.all_tests)
            finally:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(original)
            if out['rc'] == 1:
                status = 'killed'
            elif out['rc'] == 0:
                status = 'survived'
            else:
                status = 'error'
            res.update(status=status, tests=tests, killed_by=out['failed'],
                       seconds=round(out['seconds'], 1),
                       summary=out['summary'])
            results.append(res)
            by = ', '.join(out['failed'][:2])
            print(f"{m['name']:<36} {status:<8} {out['seconds']:6.0f} s  "
                  f'{by or out["summary"]}', flush=True)
    return results


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m['name']:<36} {m['file']}: {m['what']}")
        return []
    results = run(args)
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
