# Copyright (c) mmuld contributors. All rights reserved.
"""Train a small latent diffusion model (SD's structure) on your images.

Example (the training images of a world of make_synthetic_world.py)::

    .venv/bin/python tools/misc/train_small_diffusion.py \\
        data/face_world data/face_world/small_sd \\
        --ann data/face_world/annotations/train.json

OUT_DIR becomes a diffusers Stable Diffusion folder that
``StableDiffusionBackbone(pretrained=OUT_DIR)`` loads like SD-1.5, e.g.
``--cfg-options model.backbone.pretrained=OUT_DIR``. It stands in for
SD-1.5's pretrained features on a CPU and replaces nothing. A killed run
continues with ``--resume``; ``samples.png`` and ``reconstructions.png``
show what the model learnt.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from mmuld.diffusion import (SmallDiffusionConfig,  # noqa: E402
                             SmallDiffusionTrainer)


def parse_args(argv=None) -> argparse.Namespace:
    defaults = SmallDiffusionConfig()
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('image_dir', help='folder of training images')
    p.add_argument('out_dir', help='output diffusers folder')
    p.add_argument('--ann', default=None,
                   help='COCO json: train only on the images it lists '
                   '(file_name relative to IMAGE_DIR), e.g. a world\'s '
                   'annotations/train.json, so that test images stay out')
    p.add_argument('--size', type=int, default=defaults.size,
                   help='training image side in pixels')
    p.add_argument('--steps', type=int, default=defaults.steps,
                   help='UNet training steps')
    p.add_argument('--vae-steps', type=int, default=defaults.vae_steps,
                   help='autoencoder training steps')
    p.add_argument('--batch-size', type=int, default=defaults.batch_size,
                   help='images per UNet step')
    p.add_argument('--vae-batch-size', type=int,
                   default=defaults.vae_batch_size,
                   help='images per autoencoder step')
    p.add_argument('--vae-channels', type=int, nargs='+',
                   default=list(defaults.vae_channels))
    p.add_argument('--unet-channels', type=int, nargs='+',
                   default=list(defaults.unet_channels))
    p.add_argument('--save-every', type=int, default=defaults.save_every,
                   help='steps between resumable states')
    p.add_argument('--seed', type=int, default=defaults.seed)
    p.add_argument('--resume', action='store_true',
                   help='continue from OUT_DIR/train_state.pth')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = SmallDiffusionConfig(
        size=args.size,
        steps=args.steps,
        vae_steps=args.vae_steps,
        batch_size=args.batch_size,
        vae_batch_size=args.vae_batch_size,
        vae_channels=tuple(args.vae_channels),
        unet_channels=tuple(args.unet_channels),
        save_every=args.save_every,
        seed=args.seed)
    trainer = SmallDiffusionTrainer(
        args.image_dir, args.out_dir, cfg, ann_file=args.ann)
    info = trainer.run(resume=args.resume)
    print(f'{info["images"]} images ({info["held_out"]} held out), '
          f'{cfg.vae_steps} autoencoder + {cfg.steps} UNet steps in '
          f'{info["seconds"]:.0f} s; held-out denoising MSE '
          f'{info["val_loss_raw"]:.4f} raw / {info["val_loss_ema"]:.4f} '
          f'averaged (kept {info["kept"]}), reconstruction MSE '
          f'{info["val_reconstruction_mse"]:.4f}')
    print(f'saved {args.out_dir} (samples.png, reconstructions.png); use it '
          f'with --cfg-options model.backbone.pretrained={args.out_dir}')
    return info


if __name__ == '__main__':
    main()
