# Copyright (c) mmuld contributors. All rights reserved.
"""Discover landmarks on images, a folder or a video (mmpose demo style).

Example::

    python tools/demo.py data/face_samples/300w \\
        configs/dldpp_face_samples_demo.py work_dirs/x/stage4_dldpp.pth \\
        --det-config rtmdet_tiny_8xb32-300e_coco.py --det-checkpoint x.pth \\
        --det-classes person --out-dir vis
"""
import argparse

from mmengine.config import DictAction

from mmuld.apis import ULDInferencer


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='mmuld demo: discovered landmarks on images / videos')
    parser.add_argument('input', help='image, folder of images or video')
    parser.add_argument('config', help='mmuld model config')
    parser.add_argument('checkpoint', help='mmuld checkpoint')
    parser.add_argument(
        '--roi',
        choices=['whole', 'detector'],
        default=None,
        help='RoI: the whole image or the best mmdet detection (whole image '
        'where the detector finds nothing). Default: detector when '
        '--det-config is given, else whole')
    parser.add_argument('--det-config', help='mmdet detector config')
    parser.add_argument(
        '--det-checkpoint', help='mmdet checkpoint (None: random weights)')
    parser.add_argument(
        '--det-classes',
        nargs='+',
        default=None,
        help='detector class names kept (default: all)')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='detection score thr')
    parser.add_argument(
        '--kpt-thr',
        type=float,
        default=0.5,
        help='landmarks with visibility below it are not drawn')
    parser.add_argument('--radius', type=int, default=None, help='kpt radius')
    parser.add_argument('--no-bbox', action='store_true', help='hide RoI')
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument(
        '--wait-time', type=float, default=0, help='display time (s)')
    parser.add_argument(
        '--out-dir',
        default=None,
        help='writes landmarks.json and visualizations/ (an mp4 for videos)')
    parser.add_argument('--device', default='cpu', help='device')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config overrides, e.g. model.backbone.pretrained=DIR')
    args = parser.parse_args(argv)
    if args.roi is None:
        args.roi = 'detector' if args.det_config else 'whole'
    if args.roi == 'detector' and not args.det_config:
        parser.error('--roi detector needs --det-config')
    if not args.show and args.out_dir is None:
        parser.error('nothing to do: give --out-dir and/or --show')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    roi = 'whole'
    if args.roi == 'detector':
        roi = dict(
            det_config=args.det_config,
            det_checkpoint=args.det_checkpoint,
            classes=args.det_classes,
            score_thr=args.score_thr)
    inferencer = ULDInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        roi=roi,
        cfg_options=args.cfg_options)
    out = inferencer(
        args.input,
        batch_size=args.batch_size,
        out_dir=args.out_dir,
        show=args.show,
        wait_time=args.wait_time,
        kpt_thr=args.kpt_thr,
        radius=args.radius,
        draw_bbox=not args.no_bbox)
    counts = getattr(inferencer.roi_provider, 'counts', None)
    n = len(out['predictions'])
    found = sum(sum(p['keypoints_visible']) for p in out['predictions'])
    print(f'{n} images, {found} landmarks found '
          f'(K={inferencer.num_landmarks})'
          + (f', RoI sources {dict(counts)}' if counts else ''))
    if args.out_dir:
        print(f'results in {args.out_dir}/landmarks.json and '
              f'{args.out_dir}/visualizations')
    return out


if __name__ == '__main__':
    main()
