# Copyright (c) mmuld contributors. All rights reserved.
"""Offline loading of the frozen Stable Diffusion components."""
import glob
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
from torch import Tensor

#: Sub-folders of a diffusers Stable Diffusion directory and the files that
#: must be found in each of them (any one pattern of a group is enough).
_REQUIRED_PARTS = {
    'unet': (('config.json', ), ('*.safetensors', '*.bin')),
    'vae': (('config.json', ), ('*.safetensors', '*.bin')),
    'text_encoder': (('config.json', ), ('*.safetensors', '*.bin')),
    'tokenizer': (('tokenizer.json', 'vocab.json'), ),
    'scheduler': (('scheduler_config.json', ), ),
}


@dataclass
class SDComponents:
    """The parts of Stable Diffusion that feature extraction needs.

    Attributes:
        unet (torch.nn.Module): A diffusers ``UNet2DConditionModel``.
        vae (torch.nn.Module): A diffusers ``AutoencoderKL``.
        scheduler (Any): A diffusers scheduler with ``add_noise`` and
            ``config.num_train_timesteps`` (e.g. ``DDPMScheduler``).
        text_embeds (Tensor): Text-encoder output for the empty prompt,
            shape (1, N, cross_attention_dim).
    """
    unet: torch.nn.Module
    vae: torch.nn.Module
    scheduler: Any
    text_embeds: Tensor


def _offline() -> None:
    """Forbid any model-hub access for this process (no downloads ever)."""
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
    os.environ.setdefault('DIFFUSERS_OFFLINE', '1')


def _has_accelerate() -> bool:
    """Whether ``accelerate`` (fast low-memory loading) is importable."""
    import importlib.util
    return importlib.util.find_spec('accelerate') is not None


def check_sd_dir(path: str) -> None:
    """Check that ``path`` is a complete diffusers SD directory.

    Args:
        path (str): Folder expected to hold ``unet/``, ``vae/``,
            ``text_encoder/``, ``tokenizer/`` and ``scheduler/``.

    Raises:
        FileNotFoundError: Naming ``path`` and every missing part.
    """
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'Stable Diffusion weights not found: {path!r} is not a '
            'directory. Expected a local diffusers directory with unet/, '
            'vae/, text_encoder/, tokenizer/ and scheduler/ (models are '
            'never downloaded; see mmuld.testing.build_tiny_sd for a tiny '
            'test model).')
    missing: List[str] = []
    for sub, groups in _REQUIRED_PARTS.items():
        folder = osp.join(path, sub)
        if not osp.isdir(folder):
            missing.append(f'{sub}/')
            continue
        for patterns in groups:
            if not any(
                    glob.glob(osp.join(folder, pattern))
                    for pattern in patterns):
                missing.append(f'{sub}/{" or ".join(patterns)}')
    if missing:
        raise FileNotFoundError(
            f'Incomplete Stable Diffusion directory {path!r}: missing '
            f'{", ".join(missing)}.')


@torch.no_grad()
def encode_empty_prompt(tokenizer: Any, text_encoder: torch.nn.Module,
                        prompt: str = '') -> Tensor:
    """Encode a prompt (the empty prompt by default) with CLIP.

    Args:
        tokenizer: A ``CLIPTokenizer``.
        text_encoder (torch.nn.Module): A ``CLIPTextModel``.
        prompt (str): The prompt. Defaults to ``''``.

    Returns:
        Tensor: Last hidden state, shape (1, model_max_length, D), float32.
    """
    max_len = int(tokenizer.model_max_length)
    if max_len > 4096:  # tokenizer saved without a length
        max_len = text_encoder.config.max_position_embeddings
    ids = tokenizer([prompt],
                    padding='max_length',
                    max_length=max_len,
                    truncation=True,
                    return_tensors='pt').input_ids
    text_encoder.eval()
    return text_encoder(ids)[0].float().detach()


def load_sd_components(pretrained: str,
                       variant: Optional[str] = None,
                       single_file_config: Optional[str] = None,
                       prompt: str = '') -> SDComponents:
    """Load the frozen SD parts from a local path, never from a hub.

    The text encoder is only used to encode the (empty) prompt once and is
    released afterwards.

    Args:
        pretrained (str): A local diffusers directory (``unet/``, ``vae/``,
            ``text_encoder/``, ``tokenizer/``, ``scheduler/``) or a local
            single-file checkpoint (``.safetensors`` / ``.ckpt``) loaded with
            ``StableDiffusionPipeline.from_single_file``.
        variant (str, optional): diffusers weight variant (e.g. ``'fp16'``).
        single_file_config (str, optional): Local diffusers directory holding
            the configs for a single-file checkpoint (needed offline unless
            the configs are already in the local Hugging Face cache).
        prompt (str): Prompt to condition the UNet on. Defaults to ``''``.

    Returns:
        SDComponents: UNet, VAE, scheduler and the prompt embedding.

    Raises:
        FileNotFoundError: If the path is missing or incomplete.
    """
    _offline()
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    pretrained = osp.expanduser(str(pretrained))
    single_file = pretrained.endswith(('.safetensors', '.ckpt'))
    if osp.isfile(pretrained) or single_file:
        if not osp.isfile(pretrained):
            raise FileNotFoundError(
                f'Stable Diffusion checkpoint not found: {pretrained!r}')
        from diffusers import StableDiffusionPipeline
        kwargs = dict(local_files_only=True)
        if single_file_config is not None:
            kwargs['config'] = single_file_config
        try:
            pipe = StableDiffusionPipeline.from_single_file(
                pretrained, **kwargs)
        except Exception as e:  # diffusers raises many types here
            raise FileNotFoundError(
                f'Could not load the single-file checkpoint {pretrained!r} '
                'offline. Pass single_file_config=<local diffusers '
                f'directory with the model configs>. Cause: {e}') from e
        scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        embeds = encode_empty_prompt(pipe.tokenizer, pipe.text_encoder,
                                     prompt)
        return SDComponents(pipe.unet, pipe.vae, scheduler, embeds)

    check_sd_dir(pretrained)
    common = dict(local_files_only=True)
    diff_kwargs = dict(low_cpu_mem_usage=_has_accelerate())
    if variant is not None:
        common['variant'] = variant
    unet = UNet2DConditionModel.from_pretrained(
        pretrained, subfolder='unet', **common, **diff_kwargs)
    vae = AutoencoderKL.from_pretrained(
        pretrained, subfolder='vae', **common, **diff_kwargs)
    # any SD scheduler config (PNDM, DDIM, ...) describes the same training
    # noise schedule; DDPM's add_noise implements Eq. q(z_t | z_0).
    scheduler = DDPMScheduler.from_pretrained(
        pretrained, subfolder='scheduler', local_files_only=True)
    tokenizer = CLIPTokenizer.from_pretrained(
        osp.join(pretrained, 'tokenizer'), local_files_only=True)
    text_encoder = CLIPTextModel.from_pretrained(
        osp.join(pretrained, 'text_encoder'), **common)
    embeds = encode_empty_prompt(tokenizer, text_encoder, prompt)
    del text_encoder, tokenizer
    return SDComponents(unet, vae, scheduler, embeds)


def random_sd15_components(device=None, seed: int = 0) -> SDComponents:
    """The SD-1.5 UNet/VAE/scheduler with random weights, built in code.

    For benchmarks: random weights take the time and memory of trained
    ones. A random (1, 77, 768) tensor stands in for the CLIP embedding of
    the empty prompt. Nothing is downloaded.

    Args:
        device (torch.device | str, optional): Device to build on.
        seed (int): Seed of the random weights. Defaults to 0.

    Returns:
        SDComponents: The components.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from mmuld.testing import SD15_SCHEDULER_KWARGS
    torch.manual_seed(seed)
    with torch.device(device or 'cpu'):
        # UNet2DConditionModel defaults are the SD-1.5 UNet except the
        # cross-attention width (768 = CLIP ViT-L/14)
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        vae = AutoencoderKL(
            down_block_types=('DownEncoderBlock2D', ) * 4,
            up_block_types=('UpDecoderBlock2D', ) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
            scaling_factor=0.18215)
    return SDComponents(unet, vae, DDPMScheduler(**SD15_SCHEDULER_KWARGS),
                        torch.randn(1, 77, 768))
