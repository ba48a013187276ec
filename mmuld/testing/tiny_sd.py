# Copyright (c) mmuld contributors. All rights reserved.
"""Build a tiny, architecturally real Stable Diffusion model for tests.

The model has the same structure as Stable Diffusion 1.5 (a KL autoencoder,
a cross-attention UNet with ``Down``/``CrossAttn`` blocks, a CLIP text
encoder with a byte-level BPE tokenizer and the SD-1.5 noise schedule) but
random weights and very few channels, so it is built in well under a second
and takes about 1 MB on disk. It is saved with ``save_pretrained`` in the
diffusers layout::

    model_index.json  unet/  vae/  text_encoder/  tokenizer/  scheduler/

and therefore loads through exactly the same code path as a real SD-1.5
directory (``StableDiffusionBackbone(pretrained=...)``,
``StableDiffusionPipeline.from_pretrained``).

Geometry: the VAE has 4 blocks, i.e. an ``8x`` downsampling like SD
(``vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)``); the
UNet has 2 levels (``block_out_channels=(16, 32)``) with 2 resnets per
up-block, so its decoder features live at image strides 16 and 8.
"""
import torch

from mmuld.diffusion.components import (SD15_SCHEDULER_KWARGS,
                                        build_text_encoder, build_unet,
                                        build_vae, save_sd_folder)

__all__ = ['SD15_SCHEDULER_KWARGS', 'build_tiny_sd']


def build_tiny_sd(save_dir: str, seed: int = 0, sample_size: int = 32) -> str:
    """Build a tiny SD model with random weights and save it.

    Args:
        save_dir (str): Output folder (created if needed). The diffusers
            layout (``model_index.json``, ``unet/``, ``vae/``,
            ``text_encoder/``, ``tokenizer/``, ``scheduler/``) is written
            into it.
        seed (int): Seed of the weight initialisation; the same seed gives
            the same weights. The global RNG state is left untouched.
            Defaults to 0.
        sample_size (int): Nominal image size stored in the configs (the
            UNet ``sample_size`` is ``sample_size // 8``). Any size that is
            a multiple of 16 works at run time. Defaults to 32.

    Returns:
        str: ``save_dir``.
    """
    if sample_size < 16 or sample_size % 16:
        raise ValueError(
            'sample_size must be a positive multiple of 16, got '
            f'{sample_size}')
    cross_dim = 32
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = build_vae((8, 16, 16, 16), sample_size)
        torch.manual_seed(seed + 1)
        unet = build_unet((16, 32), sample_size // 8, cross_dim)
        torch.manual_seed(seed + 2)
        tokenizer, text_encoder = build_text_encoder(cross_dim)
    return save_sd_folder(save_dir, vae, unet, tokenizer, text_encoder)
