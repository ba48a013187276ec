# Copyright (c) mmuld contributors. All rights reserved.
"""Loading a Diffusion Hyperfeatures aggregation network checkpoint.

The checkpoints are written here in the release's layout
(``{'aggregation_network': state_dict}``, detectron2 bottleneck names,
timestep-major mixing weights), and the release's forward pass is
re-derived with plain ``torch.nn.functional`` as the oracle.
"""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmuld.models.backbones import HyperFeatureAggregator
from mmuld.models.backbones.hyperfeatures_loader import \
    load_hyperfeatures_aggregator

ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
IN_CH = (64, 128, 96)  # layer 1 has as many channels as F_ag: no shortcut
OUT, T = 128, 3
MID = OUT // 4


def release_state_dict(in_channels, num_t, out=OUT, seed=0):
    """A random ``AggregationNetwork`` state dict in the release's layout,
    with ``mixing_weights[t * L + l] = l + t / 4``."""
    g = torch.Generator().manual_seed(seed)
    mid = out // 4

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    sd = {}
    for l_idx, c in enumerate(in_channels):
        pre = f'bottleneck_layers.{l_idx}.0'
        convs = dict(conv1=(mid, c, 1), conv2=(mid, mid, 3),
                     conv3=(out, mid, 1))
        if c != out:
            convs['shortcut'] = (out, c, 1)
        for name, (o, i, k) in convs.items():
            sd[f'{pre}.{name}.weight'] = rnd(o, i, k, k)
            sd[f'{pre}.{name}.norm.weight'] = 1 + rnd(o)
            sd[f'{pre}.{name}.norm.bias'] = rnd(o)
    num_l = len(in_channels)
    sd['mixing_weights'] = torch.tensor(
        [l_idx + 0.25 * t for t in range(num_t) for l_idx in range(num_l)])
    return sd


def release_forward(sd, feats, num_l):
    """The release's ``AggregationNetwork.forward``, re-derived: channels
    concatenated timestep-major, bottleneck ``i % L`` for chunk ``i``."""
    batch = torch.cat([f[:, t] for t in range(feats[0].shape[1])
                       for f in feats], dim=1)
    weights = torch.softmax(sd['mixing_weights'], dim=0)

    def conv_gn(x, name, pad=0):
        y = F.conv2d(x, sd[f'{name}.weight'], padding=pad)
        return F.group_norm(y, 32, sd[f'{name}.norm.weight'],
                            sd[f'{name}.norm.bias'])

    out, start = 0, 0
    for i in range(weights.numel()):
        pre = f'bottleneck_layers.{i % num_l}.0'
        c = sd[f'{pre}.conv1.weight'].shape[1]
        x = batch[:, start:start + c]
        start += c
        y = F.relu(conv_gn(x, f'{pre}.conv1'))
        y = F.relu(conv_gn(y, f'{pre}.conv2', pad=1))
        y = conv_gn(y, f'{pre}.conv3')
        short = conv_gn(x, f'{pre}.shortcut') \
            if f'{pre}.shortcut.weight' in sd else x
        out = out + weights[i] * F.relu(y + short)
    return out


def _save(tmp_path, sd, name='aggregation_network.pt'):
    path = str(tmp_path / name)
    torch.save({'step': 5000, 'config': {'projection_dim': OUT},
                'aggregation_network': sd}, path)
    return path


def test_mixing_weights_land_layer_major_and_forward_matches(tmp_path):
    sd = release_state_dict(IN_CH, T)
    path = _save(tmp_path, sd)
    agg = HyperFeatureAggregator(IN_CH, T, OUT)
    load_hyperfeatures_aggregator(agg, path)
    # entry (l, t) of the layer-major table is l + t / 4
    expected = torch.tensor([[l_idx + 0.25 * t for t in range(T)]
                             for l_idx in range(len(IN_CH))])
    assert torch.equal(agg.mixing_weights.detach().view(len(IN_CH), T),
                       expected)
    assert torch.equal(agg.bottlenecks[2].conv2.conv.weight.detach(),
                       sd['bottleneck_layers.2.0.conv2.weight'])
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, T, c, 8, 8, generator=g) for c in IN_CH]
    agg.eval()
    with torch.no_grad():
        ours = agg(feats, (8, 8))
    ref = release_forward(sd, feats, len(IN_CH))
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    # the order matters: the release's vector taken as layer-major (no
    # transposition) gives another F_ag
    with torch.no_grad():
        agg.mixing_weights.copy_(sd['mixing_weights'])
        assert not torch.allclose(agg(feats, (8, 8)), ref, atol=1e-3)


def test_loaded_weights_survive_init_weights(tmp_path):
    sd = release_state_dict(IN_CH, T)
    agg = HyperFeatureAggregator(IN_CH, T, OUT)
    load_hyperfeatures_aggregator(agg, _save(tmp_path, sd))
    agg.init_weights()  # what runner.train() calls
    assert torch.equal(agg.bottlenecks[0].conv1.conv.weight.detach(),
                       sd['bottleneck_layers.0.0.conv1.weight'])


def test_bare_state_dict_is_accepted(tmp_path):
    sd = release_state_dict(IN_CH, T)
    path = str(tmp_path / 'bare.pt')
    torch.save(sd, path)
    agg = HyperFeatureAggregator(IN_CH, T, OUT)
    load_hyperfeatures_aggregator(agg, path)
    assert agg.mixing_weights[1].item() == 0.25  # (l=0, t=1)


@pytest.mark.parametrize('case,error,match', [
    ('missing', FileNotFoundError, 'does not exist'),
    ('not_ckpt', ValueError, 'not a Diffusion Hyperfeatures'),
    ('garbage', ValueError, 'cannot read'),
    ('timesteps', ValueError, r'"mixing_weights" has shape \(18,\)'),
    ('channels', ValueError,
     r'"bottleneck_layers.0.0.conv1.weight" has shape \(32, 80, 1, 1\)'),
    ('layers', ValueError, '2 bottleneck layers'),
    ('two_blocks', ValueError, 'unexpected keys'),
])
def test_wrong_checkpoint_names_file_and_key(tmp_path, case, error, match):
    agg = HyperFeatureAggregator(IN_CH, T, OUT)
    before = {k: v.clone() for k, v in agg.state_dict().items()}
    sd = release_state_dict(IN_CH, T)
    if case == 'missing':
        path = str(tmp_path / 'nowhere.pt')
    elif case == 'not_ckpt':
        path = str(tmp_path / 'other.pt')
        torch.save({'state_dict': {'conv.weight': torch.zeros(1)}}, path)
    elif case == 'garbage':
        path = str(tmp_path / 'garbage.pt')
        with open(path, 'wb') as f:
            f.write(b'not a checkpoint')
    elif case == 'timesteps':
        path = _save(tmp_path, release_state_dict(IN_CH, 2 * T))
    elif case == 'channels':
        path = _save(tmp_path, release_state_dict((80, ) + IN_CH[1:], T))
    elif case == 'layers':
        path = _save(tmp_path, release_state_dict(IN_CH[:2], T))
    else:
        sd['bottleneck_layers.0.1.conv1.weight'] = torch.zeros(MID, OUT, 1,
                                                               1)
        path = _save(tmp_path, sd)
    with pytest.raises(error, match=match) as info:
        load_hyperfeatures_aggregator(agg, path)
    assert path in str(info.value)
    # nothing was loaded
    for k, v in agg.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_group_norm_groups_are_checked(tmp_path):
    # out 32 -> bottleneck width 8 -> GroupNorm(8, 8): not the release's 32
    agg = HyperFeatureAggregator(IN_CH, T, 32)
    path = _save(tmp_path, release_state_dict(IN_CH, T, out=32))
    with pytest.raises(ValueError, match='GroupNorm'):
        load_hyperfeatures_aggregator(agg, path)


def test_zeroshot_configs_take_the_checkpoint(tmp_path, tiny_sd_dir):
    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    register_all_modules()
    for name in ('zeroshot_aflw.py', 'zeroshot_mafl.py',
                 'zeroshot_face_samples_demo.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
        assert cfg.model.aggregator_ckpt is None, name
    cfg.model.backbone.pretrained = tiny_sd_dir
    cfg.model.backbone.agg_channels = OUT
    plain = MODELS.build(cfg.model)
    chans = plain.backbone.layer_channels
    num_t = len(plain.backbone.timesteps)
    sd = release_state_dict(chans, num_t)
    cfg.model.aggregator_ckpt = _save(tmp_path, sd)
    model = MODELS.build(cfg.model)
    agg = model.backbone.aggregator
    assert torch.equal(
        agg.mixing_weights.detach().view(len(chans), num_t),
        sd['mixing_weights'].view(num_t, len(chans)).t())
    assert torch.equal(agg.bottlenecks[-1].conv3.gn.weight.detach(),
                       sd[f'bottleneck_layers.{len(chans) - 1}.0.conv3.'
                          'norm.weight'])
    # a checkpoint for another layer set stops the build, naming the file
    cfg.model.aggregator_ckpt = _save(
        tmp_path, release_state_dict(chans[:-1], num_t), 'short.pt')
    with pytest.raises(ValueError, match='short.pt'):
        MODELS.build(cfg.model)
