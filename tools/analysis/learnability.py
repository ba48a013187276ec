# Copyright (c) mmuld contributors. All rights reserved.
"""Does the method discover landmarks? Train, evaluate, compare.

One command trains D-ULD++ (its stage-2 checkpoint is D-ULD), runs
ZeroShot on the bootstrapped backbone (or, when its config sets
``zeroshot_from_bootstrap = False``, on its own config's backbone, e.g.
frozen diffusion features and a random aggregator), evaluates all three on
a COCO keypoint set of any object with N named points, and compares them
with two baselines that discover nothing: the mean training shape put on
every crop (forward NME) and K random points per crop. ``--supervised``
adds an upper bound: mmpose's top-down ResNet-18 + HeatmapHead trained
with the training ground truth. Every row gets the forward / backward NME,
the accuracy of every ground-truth part (a landmark within 0.2
normalisers), the worst part and the spread of the landmarks; the verdict
says "discovers landmarks" only when D-ULD++ beats the baselines by a wide
margin **and** finds every part.

    .venv/bin/python tools/analysis/learnability.py \\
        --data-root data/face_world --train-ann annotations/train.json \\
        --test-ann annotations/test.json --work-dir work_dirs/learnability

Writes ``WORK_DIR/learnability.json``, ``learnability.md`` (the table) and
``landmarks_grid.png`` (test crops, one colour per landmark id; rows: GT,
each method). The point names come from the json's category; the NME is
normalised by the distance of points ``--norm-points I J`` (default 0 1,
the eyes of MAFL-order faces and of the cat world), or with ``--norm bbox``
by ``sqrt(w * h)`` of the ground-truth points' box (the LS3D protocol,
for wide poses, where the turn shrinks the inter-ocular distance).
``--seeds 0 1 2`` runs it once per training seed and writes the mean and
range of every figure (``seeds.md``, ``seeds.json``).

The benchmark is :func:`mmuld.evaluation.learnability_run.run_learnability`
(options: :class:`~mmuld.evaluation.learnability_run.LearnabilityOptions`,
the names of the arguments below); this script parses them and calls it.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.evaluation.learnability_run import (  # noqa: E402
    METHODS, LearnabilityOptions, run_learnability)
from mmuld.evaluation.learnability_seeds import (  # noqa: E402
    run_learnability_seeds)


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (``sys.argv[1:]`` when ``argv`` is None)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data-root', required=True, help='image root')
    p.add_argument('--train-ann', required=True,
                   help='training json (relative to --data-root or absolute)')
    p.add_argument('--test-ann', required=True, help='test json')
    p.add_argument('--work-dir', required=True, help='output folder')
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=METHODS)
    p.add_argument('--config', default=osp.join(
        ROOT, 'configs/dldpp_face_world_cpu.py'),
        help='D-ULD++ config (D-ULD is its stage-2 checkpoint)')
    p.add_argument('--zeroshot-config', default=osp.join(
        ROOT, 'configs/zeroshot_face_world_cpu.py'))
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   default={}, help='overrides of --config (and of the '
                   'ZeroShot config where the key exists there)')
    p.add_argument('--stage-iters', type=int, nargs=4, default=None,
                   metavar=('BOOT', 'DULD', 'PROXY', 'DLDPP'),
                   help='iterations of the four stages (default: config)')
    p.add_argument('--cluster-interval', type=int, default=None,
                   help='iterations between clustering rounds')
    p.add_argument('--num-grid', type=int, default=8,
                   help='test images in the picture grid')
    p.add_argument('--norm-points', type=int, nargs=2, default=(0, 1),
                   metavar=('I', 'J'),
                   help='ground-truth points whose distance normalises the '
                   'NME and the part accuracy (default: 0 1, the eyes)')
    p.add_argument('--norm', choices=('points', 'bbox'), default='points',
                   help="normaliser: the distance of --norm-points, or "
                   "'bbox', sqrt(w * h) of the ground-truth points' box "
                   "(Mallis et al.'s LS3D protocol: it does not shrink "
                   'with the yaw)')
    p.add_argument('--supervised', action='store_true',
                   help='also train mmpose\'s top-down ResNet-18 + '
                   'HeatmapHead on the training ground truth and score it '
                   '(an upper bound; about 6 minutes on 2 CPU cores)')
    p.add_argument('--supervised-config', default=osp.join(
        ROOT, 'configs/supervised_face_world_cpu.py'))
    p.add_argument('--allow-overlap', action='store_true',
                   help='accept test images that are also training images '
                   '(refused by default; the report then says so)')
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='run the benchmark once per training seed (in '
                   'WORK_DIR/seed_S) and write the mean and range of every '
                   'figure to WORK_DIR/seeds.md: one run\'s part accuracy '
                   'moves by tens of points with the seed')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Run the benchmark
    (:func:`mmuld.evaluation.learnability_run.run_learnability`), or once
    per seed with ``--seeds``
    (:func:`mmuld.evaluation.learnability_seeds.run_learnability_seeds`).

    Returns:
        dict: The summary written to ``learnability.json`` (``seeds.json``
        with ``--seeds``).
    """
    args = vars(parse_args(argv))
    seeds = args.pop('seeds')
    opts = LearnabilityOptions(**args)
    if seeds is None:
        return run_learnability(opts)
    return run_learnability_seeds(opts, seeds)


if __name__ == '__main__':
    main()
