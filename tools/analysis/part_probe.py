# Copyright (c) mmuld contributors. All rights reserved.
"""Can a trained model's descriptors place the ground-truth parts at all?

For each part, the mean descriptor at its ground-truth points over the
training images is decoded on the test images at its similarity peak, as
the model decodes a centroid (mmuld.evaluation.functional.
ground_truth_probe). Prints every part's accuracy at a few thresholds of
the normaliser. High figures next to low part accuracy of the discovered
landmarks (learnability.md) mean the clustering chose the wrong places;
low figures mean the descriptors cannot tell the parts apart.
``--first-round`` splits the clustering's share in two: whether the first
round's over-clusters form a cluster on each part at all, and whether its
choice of K keeps it (mmuld.evaluation.functional.first_round_probe).
For worlds with whole-image boxes (make_synthetic_world.py,
make_photo_world.py)::

    .venv/bin/python tools/analysis/part_probe.py \\
        configs/dldpp_face_world_cpu.py \\
        work_dirs/learnability/dldpp_train/stage1_bootstrap.pth \\
        --data-root work_dirs/face_world --train-ann annotations/train.json \\
        --test-ann annotations/test.json
"""
import argparse
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='model config')
    p.add_argument('checkpoint', help='checkpoint of that model')
    p.add_argument('--data-root', required=True, help='image root')
    p.add_argument('--train-ann', required=True,
                   help='reference json (relative to --data-root or absolute)')
    p.add_argument('--test-ann', required=True, help='query json')
    p.add_argument('--norm-points', type=int, nargs=2, default=(0, 1),
                   metavar=('I', 'J'), help='normalising points (default: '
                   '0 1, the eyes)')
    p.add_argument('--norm', choices=('points', 'bbox'), default='points',
                   help="the distance of --norm-points, or 'bbox': sqrt(w * "
                   "h) of the ground-truth points' box (the LS3D protocol)")
    p.add_argument('--thrs', type=float, nargs='+', default=[0.1, 0.2, 0.3])
    p.add_argument('--candidates', action='store_true',
                   help="also report how many reference images have a "
                   "clustering round's candidate near each part (the "
                   "config's train_cfg.clustering candidates)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   default={}, help='override config settings, e.g. '
                   'train_cfg.clustering.overcluster=10')
    p.add_argument('--first-round', action='store_true',
                   help="also run the config's first clustering round on "
                   'the reference images (a peak round) and report, per '
                   'part, its best over-cluster and the chosen K landmarks')
    return p.parse_args(argv)


def _print_table(title: str, names: list, thrs, acc) -> None:
    print(title)
    print('| threshold | ' + ' | '.join(names) + ' |')
    print('| --- ' * (len(names) + 1) + '|')
    for thr, row in zip(thrs, acc):
        print(f'| {thr:g} | ' + ' | '.join(f'{100 * a:.0f} %' for a in row)
              + ' |')


def main(argv=None) -> dict:
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mmuld.diffusion.probe import load_keypoint_images
    from mmuld.evaluation.functional import (descriptor_maps,
                                             ground_truth_probe,
                                             round_candidate_coverage,
                                             round_first_choice)
    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu',
                    strict=False)
    size = int(max(cfg.get('input_size', (64, 64))))
    sets, images_of = {}, {}
    for name, ann in (('train', args.train_ann), ('test', args.test_ann)):
        path = ann if osp.isabs(ann) else osp.join(args.data_root, ann)
        images, frac = load_keypoint_images(args.data_root, path, size)
        images_of[name] = images
        sets[name] = (descriptor_maps(model, images), frac * size - 0.5)
    norm = tuple(args.norm_points) if args.norm == 'points' else 'bbox'
    with open(path, encoding='utf-8') as f:
        names = json.load(f)['categories'][0].get('keypoints') or []
    res = ground_truth_probe(*sets['train'], *sets['test'], model.stride,
                             norm_points=norm, thrs=args.thrs)
    g = res['accuracy'].shape[1]
    names = list(names) if len(names) == g else [f'p{i}' for i in range(g)]
    _print_table(
        'accuracy of ground-truth centroids decoded at their peaks '
        f'({len(sets["train"][0])} reference, {len(sets["test"][0])} '
        'query images)', names, args.thrs, res['accuracy'])
    out = dict(names=names, thrs=list(args.thrs),
               accuracy=res['accuracy'].tolist())
    if args.candidates:
        cov = round_candidate_coverage(
            cfg, model, images_of['train'], sets['train'][1], norm, args.thrs)
        _print_table(
            'reference images with a clustering-round candidate near the '
            f'part ({cov["kind"]} candidates, {cov["per_image"]:.1f} per '
            'image)', names, args.thrs, cov['coverage'])
        out['candidate_coverage'] = cov['coverage'].tolist()
    if args.first_round:
        first = round_first_choice(cfg, model, images_of['train'],
                                   sets['train'][1], norm, args.thrs,
                                   maps=sets['train'][0])
        _print_table(
            "the first clustering round's best of its "
            f'{first["overclusters"]} over-clusters on each part '
            '(reference images)', names, args.thrs, first['best'])
        _print_table(
            f"the first clustering round's {model.num_landmarks} chosen "
            'landmarks (reference images)', names, args.thrs,
            first['chosen'])
        out['first_round'] = dict(best=first['best'].tolist(),
                                  chosen=first['chosen'].tolist(),
                                  overclusters=first['overclusters'])
    return out


if __name__ == '__main__':
    main()
