# Copyright (c) mmuld contributors. All rights reserved.
"""Train a small latent diffusion model with Stable Diffusion's structure.

It stands in for SD-1.5's pretrained features where no SD weights can be
had (CPU machines, no model hub): the same parts (KL autoencoder,
cross-attention UNet on the empty prompt, CLIP text encoder, SD-1.5 DDPM
schedule, epsilon prediction), far fewer channels, trained on the user's own
images. The result is a diffusers folder that
``StableDiffusionBackbone(pretrained=OUT_DIR)`` loads through the code that
loads SD-1.5. It replaces nothing: SD-1.5 features come from billions of
images, these from a few hundred.

Two phases, as in latent diffusion: the autoencoder (reconstruction MSE and
a small KL term), then, on its frozen latents, the UNet (DDPM noising at a
uniform timestep, MSE on the predicted noise) with an exponential moving
average of its weights. The held-out images (1 in ``val_every``) score the
raw and the averaged UNet at fixed noise; the better one is saved.
"""
import json
import math
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from mmuld.models.backbones.sd_loading import encode_empty_prompt
from .components import (SD15_SCHEDULER_KWARGS, build_text_encoder,
                         build_unet, build_vae, save_sd_folder)
from .images import images_fingerprint, list_images, load_images

STATE_FILE = 'train_state.pth'
INFO_FILE = 'training_info.json'
#: Options that may change on ``resume`` (more steps, other outputs).
RESUMABLE_CHANGES = ('steps', 'save_every', 'num_samples', 'sample_steps')


@dataclass
class SmallDiffusionConfig:
    """Size and schedule of a small latent diffusion model.

    Attributes:
        size (int): Training image side (multiple of 16).
        steps (int): UNet training steps.
        vae_steps (int): Autoencoder training steps.
        batch_size (int): Images per UNet step.
        vae_batch_size (int): Images per autoencoder step.
        vae_channels (tuple): Autoencoder channels per level; 3 levels give
            a 4x latent (16 x 16 at 64 px).
        unet_channels (tuple): UNet channels per level.
        cross_attention_dim (int): Text embedding width.
        lr (float): UNet AdamW learning rate.
        vae_lr (float): Autoencoder AdamW learning rate.
        warmup (int): Linear warm-up steps of each phase.
        kl_weight (float): Weight of the autoencoder's KL term.
        ema_decay (float): Highest decay of the UNet's weight average.
        flip (bool): Train on horizontal flips too.
        val_every (int): One image in ``val_every`` is held out.
        save_every (int): Steps between resumable state files.
        num_samples (int): Images sampled into ``samples.png``.
        sample_steps (int): DDIM steps of the samples.
        seed (int): Seed of weights, batches and noise.
    """
    size: int = 64
    steps: int = 1800
    vae_steps: int = 600
    batch_size: int = 32
    vae_batch_size: int = 16
    vae_channels: Tuple[int, ...] = (16, 32, 64)
    unet_channels: Tuple[int, ...] = (32, 64, 128)
    cross_attention_dim: int = 64
    lr: float = 1e-3
    vae_lr: float = 1e-3
    warmup: int = 100
    kl_weight: float = 1e-6
    ema_decay: float = 0.999
    flip: bool = True
    val_every: int = 20
    save_every: int = 250
    num_samples: int = 16
    sample_steps: int = 50
    seed: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` naming the first invalid option."""
        unit = 2**(len(self.vae_channels) - 1) * 2**(
            len(self.unet_channels) - 1)
        if self.size < unit or self.size % unit:
            raise ValueError(f'size must be a positive multiple of {unit} '
                             f'(autoencoder x UNet downsampling), got '
                             f'{self.size}')
        for name in ('steps', 'vae_steps', 'batch_size', 'vae_batch_size',
                     'save_every',
                     'val_every', 'sample_steps'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got '
                                 f'{getattr(self, name)}')


def _lr_lambda(warmup: int):
    return lambda step: min(1.0, (step + 1) / max(warmup, 1))


def _save_grid(images: Tensor, path: str, nrow: int) -> None:
    """Save (N, 3, H, W) images in [-1, 1] as one PNG grid."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().byte()
    n, _, h, w = x.shape
    rows = math.ceil(n / nrow)
    grid = torch.zeros(3, rows * h, nrow * w, dtype=torch.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = x[i]
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)


class SmallDiffusionTrainer:
    """Train and save a small SD-structured latent diffusion model.

    Args:
        image_dir (str): Folder of training images (searched recursively).
        out_dir (str): Output diffusers folder; also holds the resumable
            state (``train_state.pth``), ``training_info.json``,
            ``samples.png`` and ``reconstructions.png``.
        cfg (SmallDiffusionConfig): Model size and schedule.
        ann_file (str, optional): A COCO json whose images (relative to
            ``image_dir``) are the only ones used.
        progress (bool): Show progress bars. Defaults to True.
    """

    def __init__(self,
                 image_dir: str,
                 out_dir: str,
                 cfg: SmallDiffusionConfig,
                 ann_file: Optional[str] = None,
                 progress: bool = True) -> None:
        cfg.check()
        self.cfg = cfg
        self.out_dir = out_dir
        self.progress = progress
        self.paths = list_images(image_dir, ann_file)
        self.fingerprint = images_fingerprint(self.paths, cfg.size)
        self.state_path = osp.join(out_dir, STATE_FILE)

    # ------------------------------------------------------------------
    # building blocks
    # ------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.vae = build_vae(cfg.vae_channels, cfg.size)
        lat = cfg.size // 2**(len(cfg.vae_channels) - 1)
        self.unet = build_unet(cfg.unet_channels, lat,
                               cfg.cross_attention_dim)
        self.tokenizer, self.text_encoder = build_text_encoder(
            cfg.cross_attention_dim)
        self.text_encoder.requires_grad_(False)
        self.text = encode_empty_prompt(self.tokenizer, self.text_encoder)
        from diffusers import DDPMScheduler
        from diffusers.training_utils import EMAModel
        self.scheduler = DDPMScheduler(**SD15_SCHEDULER_KWARGS)
        self.ema = EMAModel(
            self.unet.parameters(),
            decay=cfg.ema_decay,
            use_ema_warmup=True,
            power=2 / 3)
        self.vae_opt = torch.optim.AdamW(
            self.vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
        self.unet_opt = torch.optim.AdamW(
            self.unet.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.vae_sched = torch.optim.lr_scheduler.LambdaLR(
            self.vae_opt, _lr_lambda(cfg.warmup))
        self.unet_sched = torch.optim.lr_scheduler.LambdaLR(
            self.unet_opt, _lr_lambda(cfg.warmup))
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def _split(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """Training images (with flips) and held-out images."""
        idx = torch.arange(len(images))
        val = idx % self.cfg.val_every == self.cfg.val_every - 1
        if len(images) < 2 * self.cfg.val_every:
            val = torch.zeros_like(val)  # too few to hold any out
        self.num_held_out = int(val.sum())
        train = images[~val]
        if self.cfg.flip:
            train = torch.cat([train, train.flip(-1)])
        # with none held out, the scores are taken on a training image
        return train, images[val] if val.any() else images[:1]

    def _batch(self, n: int, size: int) -> Tensor:
        return torch.randint(n, (size, ), generator=self.gen)

    @torch.no_grad()
    def _latent_stats(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """Posterior mean and std of every image under the frozen VAE."""
        self.vae.eval()
        mus, sigmas = [], []
        for chunk in images.split(64):
            dist = self.vae.encode(chunk).latent_dist
            mus.append(dist.mean)
            sigmas.append(dist.std)
        return torch.cat(mus), torch.cat(sigmas)

    def _unet_loss(self, unet, z: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        noisy = self.scheduler.add_noise(z, noise, t)
        text = self.text.expand(len(z), -1, -1)
        pred = unet(noisy, t, encoder_hidden_states=text).sample
        return F.mse_loss(pred, noise)

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------
    def _state(self, phase: str, step: int, log: List[dict]) -> dict:
        return dict(
            cfg=asdict(self.cfg),
            fingerprint=self.fingerprint,
            phase=phase,
            step=step,
            log=log,
            vae=self.vae.state_dict(),
            unet=self.unet.state_dict(),
            ema=self.ema.state_dict(),
            vae_opt=self.vae_opt.state_dict(),
            unet_opt=self.unet_opt.state_dict(),
            vae_sched=self.vae_sched.state_dict(),
            unet_sched=self.unet_sched.state_dict(),
            gen=self.gen.get_state(),
            scaling_factor=float(self.vae.config.scaling_factor))

    def _save_state(self, phase: str, step: int, log: List[dict]) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        part = self.state_path + '.part'
        torch.save(self._state(phase, step, log), part)
        os.replace(part, self.state_path)

    def _load_state(self) -> dict:
        from mmuld.utils.checkpoint import load_checkpoint_file
        state = load_checkpoint_file(self.state_path)
        if state.get('fingerprint') != self.fingerprint:
            raise ValueError(
                f'{self.state_path} was written for other images or another '
                'size than this run; resume with the same IMAGE_DIR, --ann '
                'and --size, or choose another OUT_DIR')
        saved = dict(state['cfg'])
        mine = asdict(self.cfg)
        diff = [
            k for k in mine
            if k not in RESUMABLE_CHANGES and saved.get(k) != mine[k]
            and not (isinstance(mine[k], tuple)
                     and list(mine[k]) == saved.get(k))
        ]
        if diff:
            raise ValueError(
                f'{self.state_path} was trained with other options: ' +
                ', '.join(f'{k}={saved.get(k)!r} (now {mine[k]!r})'
                          for k in diff))
        self.vae.load_state_dict(state['vae'])
        self.unet.load_state_dict(state['unet'])
        self.ema.load_state_dict(state['ema'])
        self.vae_opt.load_state_dict(state['vae_opt'])
        self.unet_opt.load_state_dict(state['unet_opt'])
        self.vae_sched.load_state_dict(state['vae_sched'])
        self.unet_sched.load_state_dict(state['unet_sched'])
        self.gen.set_state(state['gen'])
        self.vae.register_to_config(scaling_factor=state['scaling_factor'])
        return state

    # ------------------------------------------------------------------
    # phases
    # ------------------------------------------------------------------
    def _bar(self, total: int, start: int, desc: str):
        from tqdm import tqdm
        return tqdm(
            total=total,
            initial=start,
            desc=desc,
            disable=not self.progress,
            dynamic_ncols=True)

    def _train_vae(self, train: Tensor, start: int, log: List[dict]) -> None:
        cfg = self.cfg
        self.vae.train()
        with self._bar(cfg.vae_steps, start, 'autoencoder') as bar:
            for step in range(start, cfg.vae_steps):
                x = train[self._batch(len(train), cfg.vae_batch_size)]
                dist = self.vae.encode(x).latent_dist
                z = dist.mean + dist.std * torch.randn(
                    dist.mean.shape, generator=self.gen)
                rec = self.vae.decode(z).sample
                mse = F.mse_loss(rec, x)
                kl = dist.kl().mean() / dist.mean[0].numel()
                loss = mse + cfg.kl_weight * kl
                self.vae_opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.vae.parameters(), 1.0)
                self.vae_opt.step()
                self.vae_sched.step()
                bar.update(1)
                bar.set_postfix(mse=f'{mse.item():.4f}')
                if (step + 1) % 50 == 0:
                    log.append(dict(phase='vae', step=step + 1,
                                    mse=mse.item(), kl=kl.item()))
                if (step + 1) % cfg.save_every == 0:
                    self._save_state('vae', step + 1, log)
        self.vae.eval()
        self.vae.requires_grad_(False)

    def _set_scaling_factor(self, train: Tensor) -> None:
        """``1 / std`` of the training latents, as SD's 0.18215 was set."""
        mu, sigma = self._latent_stats(train)
        std = (mu.var() + sigma.pow(2).mean()).sqrt().item()
        self.vae.register_to_config(scaling_factor=1.0 / max(std, 1e-6))

    def _train_unet(self, train: Tensor, start: int, log: List[dict]) -> None:
        cfg = self.cfg
        mu, sigma = self._latent_stats(train)
        sf = float(self.vae.config.scaling_factor)
        self.unet.train()
        with self._bar(cfg.steps, start, 'unet') as bar:
            for step in range(start, cfg.steps):
                idx = self._batch(len(mu), cfg.batch_size)
                eps = torch.randn(mu[idx].shape, generator=self.gen)
                z = (mu[idx] + sigma[idx] * eps) * sf
                noise = torch.randn(z.shape, generator=self.gen)
                t = torch.randint(
                    self.scheduler.config.num_train_timesteps, (len(z), ),
                    generator=self.gen)
                loss = self._unet_loss(self.unet, z, noise, t)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f'UNet loss is {loss.item()} at step {step + 1}; '
                        f'the last good state is {self.state_path}')
                self.unet_opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.unet.parameters(), 1.0)
                self.unet_opt.step()
                self.unet_sched.step()
                self.ema.step(self.unet.parameters())
                bar.update(1)
                bar.set_postfix(loss=f'{loss.item():.4f}')
                if (step + 1) % 50 == 0:
                    log.append(dict(phase='unet', step=step + 1,
                                    loss=loss.item()))
                if (step + 1) % cfg.save_every == 0:
                    self._save_state('unet', step + 1, log)
        self.unet.eval()

    # ------------------------------------------------------------------
    # evaluation and outputs
    # ------------------------------------------------------------------
    @torch.no_grad()
    def _val_loss(self, unet, val: Tensor) -> float:
        """Denoising MSE on the held-out images at fixed noise and t."""
        gen = torch.Generator().manual_seed(12345)
        mu, _ = self._latent_stats(val)
        z = mu * float(self.vae.config.scaling_factor)
        losses = []
        for t_val in (100, 300, 500, 700, 900):
            noise = torch.randn(z.shape, generator=gen)
            t = torch.full((len(z), ), t_val, dtype=torch.long)
            losses.append(self._unet_loss(unet, z, noise, t).item())
        return float(np.mean(losses))

    def _pick_weights(self, val: Tensor) -> Dict[str, float]:
        """Keep the raw or the averaged UNet, whichever denoises better."""
        raw = self._val_loss(self.unet, val)
        backup = [p.detach().clone() for p in self.unet.parameters()]
        self.ema.copy_to(self.unet.parameters())
        ema = self._val_loss(self.unet, val)
        if raw < ema:
            for p, b in zip(self.unet.parameters(), backup):
                p.data.copy_(b)
        return dict(val_loss_raw=raw, val_loss_ema=ema,
                    kept='raw' if raw < ema else 'ema')

    @torch.no_grad()
    def _write_pictures(self, val: Tensor) -> Dict[str, float]:
        cfg = self.cfg
        x = val[:8]
        rec = self.vae.decode(self._latent_stats(x)[0]).sample
        _save_grid(torch.cat([x, rec]), osp.join(self.out_dir,
                                                 'reconstructions.png'),
                   nrow=len(x))
        from diffusers import DDIMScheduler
        sched = DDIMScheduler(**SD15_SCHEDULER_KWARGS)
        sched.set_timesteps(cfg.sample_steps)
        gen = torch.Generator().manual_seed(cfg.seed)
        lat = cfg.size // 2**(len(cfg.vae_channels) - 1)
        z = torch.randn((cfg.num_samples, 4, lat, lat), generator=gen)
        text = self.text.expand(cfg.num_samples, -1, -1)
        for t in sched.timesteps:
            eps = self.unet(z, t, encoder_hidden_states=text).sample
            z = sched.step(eps, t, z).prev_sample
        samples = self.vae.decode(z / self.vae.config.scaling_factor).sample
        _save_grid(samples, osp.join(self.out_dir, 'samples.png'),
                   nrow=int(math.ceil(math.sqrt(cfg.num_samples))))
        return dict(val_reconstruction_mse=F.mse_loss(rec, x).item())

    def run(self, resume: bool = False) -> dict:
        """Train (or resume), save the diffusers folder and the pictures.

        Args:
            resume (bool): Continue from ``train_state.pth`` in the output
                folder. Without it an existing state file is refused, so
                that no finished or running training is overwritten.

        Returns:
            dict: What ``training_info.json`` holds (images, losses, held-out
            scores, seconds).
        """
        t0 = time.time()
        if osp.exists(self.state_path) and not resume:
            raise FileExistsError(
                f'{self.state_path} exists: pass --resume to continue that '
                'training, or choose another OUT_DIR')
        self._build()
        images, kept = load_images(self.paths, self.cfg.size)
        train, val = self._split(images)
        phase, step, log = 'vae', 0, []
        if resume and osp.exists(self.state_path):
            state = self._load_state()
            phase, step, log = state['phase'], state['step'], state['log']
        elif resume:
            raise FileNotFoundError(
                f'--resume given but {self.state_path} does not exist')
        if phase == 'vae':
            self._train_vae(train, step, log)
            self._set_scaling_factor(train)
            phase, step = 'unet', 0
            self._save_state(phase, step, log)
        else:
            self.vae.eval()
            self.vae.requires_grad_(False)
        self._train_unet(train, step, log)
        self._save_state('unet', self.cfg.steps, log)
        info = dict(
            images=len(kept),
            train_images=int(len(train) / (2 if self.cfg.flip else 1)),
            held_out=self.num_held_out,
            fingerprint=self.fingerprint,
            cfg=asdict(self.cfg),
            scaling_factor=float(self.vae.config.scaling_factor))
        info.update(self._pick_weights(val))
        save_sd_folder(self.out_dir, self.vae, self.unet, self.tokenizer,
                       self.text_encoder)
        info.update(self._write_pictures(val))
        info['seconds'] = round(time.time() - t0, 1)
        info['log'] = log
        with open(osp.join(self.out_dir, INFO_FILE), 'w') as f:
            json.dump(info, f, indent=1)
        return info
