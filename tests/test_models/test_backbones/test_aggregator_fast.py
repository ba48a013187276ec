# Copyright (c) mmuld contributors. All rights reserved.
"""The fast aggregator computes what the straightforward one computes."""
import pytest
import torch
import torch.nn.functional as F

from mmuld.models.backbones import (GNBottleneck, HyperFeatureAggregator,
                                    resize_matrix, separable_resize)

# (channels, size) of each layer; out size 16: upsampling x4 and x2, a
# layer at the output size, a layer to downsample, one with in == out
# channels (identity shortcut)
LAYERS = [(40, 4), (24, 8), (12, 16), (12, 20), (24, 8)]
OUT = (16, 16)


def _feats(b=2, t=3, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(b, t, c, s, s, generator=gen).to(dtype)
        for c, s in LAYERS
    ]


def _pair(seed=0):
    torch.manual_seed(seed)
    naive = HyperFeatureAggregator([c for c, _ in LAYERS], 3, 24,
                                   fast=False)
    naive.init_weights()
    with torch.no_grad():  # make the mixing weights non-uniform
        naive.mixing_weights.normal_()
        for m in naive.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.normal_()
                m.bias.normal_()
    fast = HyperFeatureAggregator([c for c, _ in LAYERS], 3, 24)
    fast.load_state_dict(naive.state_dict())
    return naive, fast


@pytest.mark.parametrize('size_in,size_out', [((4, 6), (16, 16)),
                                              ((8, 8), (16, 24)),
                                              ((20, 12), (16, 16)),
                                              ((7, 5), (7, 9))])
def test_separable_resize_equals_interpolate(size_in, size_out):
    x = torch.randn(2, 3, *size_in, dtype=torch.float64)
    down = size_in[0] > size_out[0] or size_in[1] > size_out[1]
    ref = F.interpolate(
        x, size=size_out, mode='bilinear', align_corners=False,
        antialias=down)
    out = separable_resize(x, size_out, antialias=down)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    # rows sum to 1: constants (and so biases) survive the resize
    a = resize_matrix(size_in[0], size_out[0], down, dtype=torch.float64)
    torch.testing.assert_close(a.sum(1), torch.ones(size_out[0],
                                                    dtype=torch.float64))


def test_bottleneck_projections_commute_with_resize():
    torch.manual_seed(0)
    for c_in in (16, 32):  # projection and identity shortcut
        bneck = GNBottleneck(c_in, 32, 8).double()
        with torch.no_grad():
            for m in bneck.modules():
                if isinstance(m, torch.nn.Conv2d) and m.bias is None:
                    m.bias = torch.nn.Parameter(torch.randn(m.out_channels))
        bneck.double()
        x = torch.randn(3, c_in, 5, 5, dtype=torch.float64)
        up = F.interpolate(x, size=(12, 12), mode='bilinear')
        a, s = bneck.input_projections(x)
        a, s = (separable_resize(v, (12, 12)) for v in (a, s))
        torch.testing.assert_close(
            bneck.forward_projected(a, s), bneck(up), rtol=0, atol=1e-10)


@pytest.mark.parametrize('with_cp', [False, True])
def test_fast_equals_naive_forward_and_gradients(with_cp):
    naive, fast = _pair()
    naive.double()
    fast.double()
    fast.with_cp = with_cp
    feats = _feats()
    out_n = naive(feats, OUT)
    out_f = fast(feats, OUT)
    assert out_f.shape == (2, 24, *OUT)
    torch.testing.assert_close(out_f, out_n, rtol=0, atol=1e-10)
    g = torch.randn_like(out_n)
    grads_n = torch.autograd.grad((out_n * g).sum(), naive.parameters())
    grads_f = torch.autograd.grad((out_f * g).sum(), fast.parameters())
    for gn, gf in zip(grads_n, grads_f):
        torch.testing.assert_close(gf, gn, rtol=0, atol=1e-9)


def test_bf16_features_and_autocast_within_bf16_tolerance():
    naive, fast = _pair(1)
    feats32 = _feats(dtype=torch.float32, seed=1)
    ref = naive(feats32, OUT)
    feats16 = [f.bfloat16() for f in feats32]
    # bf16 frozen features are taken as they are (fp32 parameters)
    out = fast(feats16, OUT)
    assert out.dtype == torch.float32
    scale = ref.abs().max()
    assert (out - ref).abs().max() / scale < 2e-2
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out_amp = fast(feats16, OUT)
    assert (out_amp.float() - ref).abs().max() / scale < 5e-2
    loss = out_amp.float().square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in fast.parameters())


def _saved_bytes(fn):
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def test_fast_path_keeps_less_for_backward():
    naive, fast = _pair()
    # SD-like: many channels at low resolution, upsampled to the output
    big = [(1, 3, 64, 4, 4)] * 1
    agg_n = HyperFeatureAggregator([64], 3, 24, fast=False)
    agg_f = HyperFeatureAggregator([64], 3, 24)
    agg_c = HyperFeatureAggregator([64], 3, 24, with_cp=True)
    feats = [torch.randn(*s).bfloat16() for s in big]
    n = _saved_bytes(lambda: agg_n(feats, (32, 32)))
    f = _saved_bytes(lambda: agg_f(feats, (32, 32)))
    c = _saved_bytes(lambda: agg_c(feats, (32, 32)))
    assert f < 0.75 * n
    assert c < 0.1 * n
    del naive, fast


def test_timestep_mismatch_is_an_error():
    agg = HyperFeatureAggregator([8], 2, 16)
    with pytest.raises(ValueError, match='layer 0'):
        agg([torch.randn(1, 3, 8, 4, 4)], (8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_fast_equals_naive_cuda_fp32_and_bf16():
    naive, fast = _pair(2)
    naive.cuda()
    fast.cuda()
    feats = [f.cuda() for f in _feats(dtype=torch.float32, seed=2)]
    tf32 = (torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32)
    # true fp32 (no TF32 convolutions): the two paths agree closely
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        ref = naive(feats, OUT)
        g = torch.randn_like(ref)
        grads_n = torch.autograd.grad((ref * g).sum(), naive.parameters())
        out = fast(feats, OUT)
        grads_f = torch.autograd.grad((out * g).sum(), fast.parameters())
    finally:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = tf32
    assert (out - ref).abs().max() / ref.abs().max() < 1e-4
    for a, b in zip(grads_f, grads_n):
        assert (a - b).abs().max() <= 1e-3 * b.abs().max() + 1e-6
    with torch.autocast('cuda', dtype=torch.bfloat16):
        out16 = fast([f.bfloat16() for f in feats], OUT)
    assert (out16.float() - ref).abs().max() / ref.abs().max() < 5e-2


@pytest.mark.parametrize('with_cp', [
    pytest.param(False, marks=pytest.mark.slow),  # about 15 s cold
    True,
])
def test_compiled_bottlenecks_compute_the_same(with_cp):
    """``compile=True`` (torch.compile of the bottlenecks) gives the eager
    output and gradients, with and without checkpointing, and stores
    nothing in the module (state dict and deepcopy unchanged)."""
    import copy
    torch.manual_seed(0)
    # one upsampled layer (forward_projected), one at the output size
    agg = HyperFeatureAggregator([16, 8], 2, 16, with_cp=with_cp).train()
    gen = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 2, 16, 4, 4, generator=gen),
             torch.randn(2, 2, 8, 8, 8, generator=gen)]

    def run(model):
        model.zero_grad()
        out = model(feats, (8, 8))
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() \
            .backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    ref, ref_grads = run(agg)
    keys = set(agg.state_dict())
    agg.compile = True
    out, grads = run(agg)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)
    assert set(agg.state_dict()) == keys
    copy.deepcopy(agg)
