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
import json
import os
import os.path as osp
import tempfile
from typing import Dict, List

import torch

#: Noise schedule of Stable Diffusion 1.5.
SD15_SCHEDULER_KWARGS = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule='scaled_linear',
    clip_sample=False,
    steps_offset=1)


def _bytes_to_unicode() -> Dict[int, str]:
    """GPT-2 / CLIP byte-to-unicode table (256 printable characters)."""
    bs = (
        list(range(ord('!'),
                   ord('~') + 1)) + list(range(ord('¡'),
                                               ord('¬') + 1)) +
        list(range(ord('®'),
                   ord('ÿ') + 1)))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _write_minimal_clip_vocab(folder: str) -> None:
    """Write a minimal but valid CLIP ``vocab.json`` and ``merges.txt``.

    The vocabulary holds the 256 byte-level base characters, their
    end-of-word (``</w>``) variants, a handful of merges and the two special
    tokens, which is enough to tokenize any text (character by character).
    """
    chars: List[str] = list(_bytes_to_unicode().values())
    tokens = chars + [c + '</w>' for c in chars]
    merges = [('t', 'h'), ('th', 'e</w>'), ('a', 'n'), ('an', 'd</w>')]
    tokens += [a + b for a, b in merges]
    tokens += ['<|startoftext|>', '<|endoftext|>']
    vocab = {tok: i for i, tok in enumerate(tokens)}
    with open(osp.join(folder, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(osp.join(folder, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n')
        f.write('\n'.join(f'{a} {b}' for a, b in merges) + '\n')


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
    from diffusers import (AutoencoderKL, DDPMScheduler,
                           StableDiffusionPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if sample_size < 16 or sample_size % 16:
        raise ValueError(
            'sample_size must be a positive multiple of 16, got '
            f'{sample_size}')
    os.makedirs(save_dir, exist_ok=True)
    cross_dim = 32
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=('DownEncoderBlock2D', ) * 4,
            up_block_types=('UpDecoderBlock2D', ) * 4,
            block_out_channels=(8, 16, 16, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=sample_size,
            scaling_factor=0.18215)
        torch.manual_seed(seed + 1)
        unet = UNet2DConditionModel(
            sample_size=sample_size // 8,
            in_channels=4,
            out_channels=4,
            down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
            up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
            block_out_channels=(16, 32),
            layers_per_block=1,
            norm_num_groups=8,
            cross_attention_dim=cross_dim,
            attention_head_dim=4)
        torch.manual_seed(seed + 2)
        with tempfile.TemporaryDirectory() as tmp:
            _write_minimal_clip_vocab(tmp)
            tokenizer = CLIPTokenizer.from_pretrained(
                tmp, model_max_length=77, local_files_only=True)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=cross_dim,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=77,
                projection_dim=cross_dim,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id))
    scheduler = DDPMScheduler(**SD15_SCHEDULER_KWARGS)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(save_dir)
    # keep the plain vocab files next to tokenizer.json (older loaders)
    _write_minimal_clip_vocab(osp.join(save_dir, 'tokenizer'))
    return save_dir
