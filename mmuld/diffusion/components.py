# Copyright (c) mmuld contributors. All rights reserved.
"""Stable Diffusion's parts at any size, saved as a diffusers folder.

Both the tiny random test model (:func:`mmuld.testing.build_tiny_sd`) and
the small diffusion model trained on a user's images
(:class:`mmuld.diffusion.SmallDiffusionTrainer`) are built here: a KL
autoencoder (``AutoencoderKL``), a cross-attention UNet
(``UNet2DConditionModel``), a CLIP text encoder with a byte-level BPE
tokenizer and the SD-1.5 noise schedule (``DDPMScheduler``). Saved with
``StableDiffusionPipeline.save_pretrained`` they load through exactly the
code that loads SD-1.5 (``StableDiffusionBackbone(pretrained=...)``).
"""
import json
import os
import os.path as osp
import tempfile
from typing import Dict, List, Sequence, Tuple

from torch import nn

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


def write_minimal_clip_vocab(folder: str) -> None:
    """Write a minimal but valid CLIP ``vocab.json`` and ``merges.txt``.

    The vocabulary holds the 256 byte-level base characters, their
    end-of-word (``</w>``) variants, a handful of merges and the two special
    tokens, which is enough to tokenize any text (character by character).

    Args:
        folder (str): Existing folder to write the two files into.
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


def build_vae(block_out_channels: Sequence[int], sample_size: int,
              norm_num_groups: int = 8,
              scaling_factor: float = 0.18215) -> nn.Module:
    """A Stable Diffusion KL autoencoder with 4 latent channels.

    Args:
        block_out_channels (Sequence[int]): Channels per level; the image is
            downsampled ``2 ** (len - 1)`` times (SD: 4 levels, 8x).
        sample_size (int): Nominal image size stored in the config.
        norm_num_groups (int): GroupNorm groups. Defaults to 8.
        scaling_factor (float): Latent scaling factor stored in the config.
            Defaults to SD-1.5's 0.18215.

    Returns:
        nn.Module: A diffusers ``AutoencoderKL``.
    """
    from diffusers import AutoencoderKL
    n = len(block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=('DownEncoderBlock2D', ) * n,
        up_block_types=('UpDecoderBlock2D', ) * n,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=norm_num_groups,
        sample_size=sample_size,
        scaling_factor=scaling_factor)


def build_unet(block_out_channels: Sequence[int], sample_size: int,
               cross_attention_dim: int, attention_head_dim: int = 4,
               layers_per_block: int = 1,
               norm_num_groups: int = 8) -> nn.Module:
    """A Stable Diffusion cross-attention UNet.

    As in SD-1.5, every level but the deepest has cross-attention, so the
    down blocks are ``CrossAttnDownBlock2D`` x (n - 1) then ``DownBlock2D``
    and the up blocks mirror them.

    Args:
        block_out_channels (Sequence[int]): Channels per level (n >= 2).
        sample_size (int): Latent size stored in the config.
        cross_attention_dim (int): Width of the text embedding.
        attention_head_dim (int): Channels per attention head. Defaults
            to 4.
        layers_per_block (int): Resnets per down block (up blocks have one
            more). Defaults to 1.
        norm_num_groups (int): GroupNorm groups. Defaults to 8.

    Returns:
        nn.Module: A diffusers ``UNet2DConditionModel``.
    """
    from diffusers import UNet2DConditionModel
    n = len(block_out_channels)
    if n < 2:
        raise ValueError('the UNet needs at least 2 levels, got '
                         f'block_out_channels={tuple(block_out_channels)}')
    down = ('CrossAttnDownBlock2D', ) * (n - 1) + ('DownBlock2D', )
    up = ('UpBlock2D', ) + ('CrossAttnUpBlock2D', ) * (n - 1)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        norm_num_groups=norm_num_groups,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=attention_head_dim)


def build_text_encoder(cross_attention_dim: int) -> Tuple[object, nn.Module]:
    """A small CLIP text encoder and its byte-level BPE tokenizer.

    Args:
        cross_attention_dim (int): Hidden width (the UNet's
            ``cross_attention_dim``).

    Returns:
        tuple: ``(CLIPTokenizer, CLIPTextModel)`` with random weights.
    """
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    with tempfile.TemporaryDirectory() as tmp:
        write_minimal_clip_vocab(tmp)
        tokenizer = CLIPTokenizer.from_pretrained(
            tmp, model_max_length=77, local_files_only=True)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=cross_attention_dim,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=cross_attention_dim,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id))
    return tokenizer, text_encoder


def save_sd_folder(save_dir: str, vae: nn.Module, unet: nn.Module,
                   tokenizer, text_encoder: nn.Module) -> str:
    """Save the parts as a diffusers Stable Diffusion folder.

    The folder holds ``model_index.json``, ``unet/``, ``vae/``,
    ``text_encoder/``, ``tokenizer/`` and ``scheduler/`` (the SD-1.5
    ``DDPMScheduler``), as ``StableDiffusionPipeline.save_pretrained``
    writes them.

    Args:
        save_dir (str): Output folder (created if needed).
        vae (nn.Module): The ``AutoencoderKL``.
        unet (nn.Module): The ``UNet2DConditionModel``.
        tokenizer: The CLIP tokenizer.
        text_encoder (nn.Module): The CLIP text model.

    Returns:
        str: ``save_dir``.
    """
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    os.makedirs(save_dir, exist_ok=True)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDPMScheduler(**SD15_SCHEDULER_KWARGS),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(save_dir)
    # keep the plain vocab files next to tokenizer.json (older loaders)
    write_minimal_clip_vocab(osp.join(save_dir, 'tokenizer'))
    return save_dir
