# Copyright (c) mmuld contributors. All rights reserved.
"""Load a Diffusion Hyperfeatures aggregation network into
:class:`HyperFeatureAggregator`.

The public Diffusion Hyperfeatures release (Luo et al., NeurIPS 2023) saves
``{'aggregation_network': state_dict, ...}`` (``torch.load(path)[
'aggregation_network']`` in its ``extract_hyperfeatures.py``) of an
``AggregationNetwork`` with

* ``bottleneck_layers.{l}.0.conv{1,2,3}.weight`` and
  ``bottleneck_layers.{l}.0.conv{1,2,3}.norm.{weight,bias}``: one
  detectron2 ``BottleneckBlock`` per layer (1x1 -> 3x3 -> 1x1 convolutions
  without bias, each followed by ``GroupNorm(32, c)``, ReLU after the first
  two and after the residual sum);
* ``bottleneck_layers.{l}.0.shortcut.weight`` / ``.shortcut.norm.*``: the
  projection shortcut (only when the layer's channels differ from the
  projection dim);
* ``mixing_weights``: ``L * T`` raw weights, softmax-normalised over all
  entries, **timestep-major**: entry ``i = t * L + l`` weighs layer ``l``
  (bottleneck ``i % L``) at the ``t``-th saved timestep.

:class:`HyperFeatureAggregator` has the same maths with mmcv
``ConvModule`` names (``bottlenecks.{l}.conv1.conv.weight``,
``bottlenecks.{l}.conv1.gn.weight``, ...) and **layer-major** mixing
weights (``view(L, T)``, entry ``l * T + t``), so the loader renames the
keys and transposes the mixing weights. Layer ``l`` is the ``l``-th tapped
up-block resnet in ``(up_block, resnet)`` order in both code bases; the
``t``-th timestep of the model (``backbone.timesteps``) must be the
``t``-th saved timestep of the release (its ``save_timestep`` order).
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

import torch
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from .aggregator import HyperFeatureAggregator

#: entry of the released checkpoint that holds the state dict
HYPERFEATURES_KEY = 'aggregation_network'
_SOURCE_CONVS = ('conv1', 'conv2', 'conv3', 'shortcut')


def _read_state_dict(path: str) -> Dict[str, Tensor]:
    """The aggregation network's state dict stored in ``path``."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Diffusion Hyperfeatures aggregator checkpoint {path} does not '
            'exist (model.aggregator_ckpt)')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise ValueError(f'{path}: cannot read it as a torch checkpoint '
                         f'({type(e).__name__}: {e})') from e
    if isinstance(ckpt, dict) and isinstance(
            ckpt.get(HYPERFEATURES_KEY), dict):
        ckpt = ckpt[HYPERFEATURES_KEY]
    if not isinstance(ckpt, dict) or 'mixing_weights' not in ckpt:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt)
        raise ValueError(
            f'{path} is not a Diffusion Hyperfeatures aggregator checkpoint: '
            f'expected a dict with "{HYPERFEATURES_KEY}" (or a bare '
            f'AggregationNetwork state dict with "mixing_weights"), found '
            f'{keys}')
    return ckpt


def convert_hyperfeatures_state_dict(
        src: Dict[str, Tensor],
        aggregator: HyperFeatureAggregator,
        source: str = '<state dict>') -> 'OrderedDict[str, Tensor]':
    """Map an ``AggregationNetwork`` state dict onto ``aggregator``'s keys.

    Args:
        src (dict): The Hyperfeatures state dict (module docstring).
        aggregator (HyperFeatureAggregator): The target; only its structure
            is read (number of layers and timesteps, key names, shapes).
        source (str): Name of the file, for error messages.

    Returns:
        OrderedDict: A complete state dict for ``aggregator``.

    Raises:
        ValueError: On a missing, unexpected or mis-shaped key, naming the
            file, the key and both shapes.
    """
    num_l = len(aggregator.bottlenecks)
    num_t = aggregator.num_timesteps
    target = aggregator.state_dict()
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    used = set()

    def take(src_key: str, dst_key: str, value: Optional[Tensor] = None):
        if src_key not in src:
            raise ValueError(
                f'{source}: key "{src_key}" is missing (needed for '
                f'"{dst_key}" of shape {tuple(target[dst_key].shape)}); '
                'the checkpoint was made for another layer set')
        used.add(src_key)
        v = src[src_key] if value is None else value
        if tuple(v.shape) != tuple(target[dst_key].shape):
            raise ValueError(
                f'{source}: key "{src_key}" has shape {tuple(v.shape)} but '
                f'the model\'s "{dst_key}" has shape '
                f'{tuple(target[dst_key].shape)} (check backbone layers / '
                'agg_channels against the checkpoint)')
        out[dst_key] = v

    src_layers = {
        int(k.split('.')[1])
        for k in src if k.startswith('bottleneck_layers.')
    }
    if len(src_layers) != num_l:
        raise ValueError(
            f'{source}: {len(src_layers)} bottleneck layers '
            f'("bottleneck_layers.*"), the model taps {num_l} SD layers '
            '(model.backbone.layers / max_up_block)')
    mw = src['mixing_weights']
    if mw.dim() != 1 or mw.numel() != num_l * num_t:
        raise ValueError(
            f'{source}: key "mixing_weights" has shape {tuple(mw.shape)}; '
            f'the model has L={num_l} layers x T={num_t} timesteps = '
            f'{num_l * num_t} mixing weights (model.backbone.timesteps '
            'must list as many timesteps as the checkpoint\'s '
            f'save_timestep, i.e. {mw.numel() // max(num_l, 1)})')
    # timestep-major (t * L + l) -> layer-major (l * T + t)
    take('mixing_weights', 'mixing_weights',
         mw.reshape(num_t, num_l).t().reshape(-1).clone())
    for l_idx, block in enumerate(aggregator.bottlenecks):
        for name in _SOURCE_CONVS:
            module = getattr(block, name)
            src_pre = f'bottleneck_layers.{l_idx}.0.{name}'
            dst_pre = f'bottlenecks.{l_idx}.{name}'
            if not isinstance(module, ConvModule):  # identity shortcut
                continue
            take(f'{src_pre}.weight', f'{dst_pre}.conv.weight')
            if module.conv.bias is not None:
                out[f'{dst_pre}.conv.bias'] = torch.zeros_like(
                    target[f'{dst_pre}.conv.bias'])
            norm = f'{dst_pre}.{module.norm_name}'
            for p in ('weight', 'bias'):
                take(f'{src_pre}.norm.{p}', f'{norm}.{p}')
    extra = sorted(k for k in src if k not in used and k != 'logit_scale')
    if extra:
        raise ValueError(
            f'{source}: unexpected keys {extra[:6]} (only one bottleneck '
            'block per layer, num_res_blocks=1, is supported)')
    missing = sorted(set(target) - set(out))
    if missing:
        raise ValueError(f'{source}: no value for the model\'s {missing[:6]}')
    return out


def _check_groups(aggregator: HyperFeatureAggregator, num_groups: int,
                  source: str) -> None:
    """GroupNorm group counts are not in a state dict: check them."""
    for name, m in aggregator.named_modules():
        if isinstance(m, nn.GroupNorm) and m.num_groups != num_groups:
            raise ValueError(
                f'{source}: the release uses GroupNorm({num_groups}, c) but '
                f'the model\'s "{name}" has {m.num_groups} groups for '
                f'{m.num_channels} channels (choose agg_channels divisible '
                f'by {4 * num_groups})')


def load_hyperfeatures_aggregator(aggregator: HyperFeatureAggregator,
                                  path: str,
                                  num_norm_groups: int = 32) -> None:
    """Load a Diffusion Hyperfeatures checkpoint into ``aggregator``.

    The aggregator's modules are marked initialised, so a later
    ``init_weights()`` (e.g. ``runner.train()``) keeps the loaded weights.

    Args:
        aggregator (HyperFeatureAggregator): Target (changed in place).
        path (str): The released checkpoint (``torch.save`` of
            ``{'aggregation_network': state_dict, ...}``) or a bare
            ``AggregationNetwork`` state dict.
        num_norm_groups (int): GroupNorm groups of the release. Defaults
            to 32.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Unreadable file, or keys / shapes that do not fit the
            model (the message names the file and the key).
    """
    if not isinstance(aggregator, HyperFeatureAggregator):
        raise TypeError('expected a HyperFeatureAggregator, got '
                        f'{type(aggregator).__name__}')
    src = _read_state_dict(path)
    _check_groups(aggregator, num_norm_groups, path)
    state = convert_hyperfeatures_state_dict(src, aggregator, source=path)
    aggregator.load_state_dict(state, strict=True)
    for m in aggregator.modules():
        if hasattr(m, '_is_init'):
            m._is_init = True
