# Copyright (c) mmuld contributors. All rights reserved.
"""The memory-light bootstrapping loss equals the straightforward one."""
import pytest
import torch
import torch.nn.functional as F

from mmuld.models.losses import BootstrapLoss
from mmuld.models.utils import random_affine_matrices

H = W = 12
STRIDE = 4


def _inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 1, H, W, generator=gen)
    desc_a = torch.randn(3, 16, H, W, generator=gen)
    desc_b = desc_a.flip(-1) + 0.3 * torch.randn(3, 16, H, W, generator=gen)
    mats = random_affine_matrices(3, (H * STRIDE, W * STRIDE),
                                  max_rotation=20.0,
                                  flip_prob=0.5, generator=gen)
    return logits, desc_a, logits.flip(-1).clone(), desc_b, mats


@pytest.mark.parametrize('max_queries', [None, 50])
def test_memory_efficient_equals_naive(max_queries):
    logits_a, da, logits_b, db, mats = _inputs()
    results = []
    for efficient in (False, True):
        leaves = [t.clone().requires_grad_() for t in (logits_a, da,
                                                       logits_b, db)]
        la, a, lb, b = leaves
        loss_fn = BootstrapLoss(
            max_queries=max_queries,
            temperature=0.07,
            memory_efficient=efficient,
            chunk_elements=3 * H * W * 7)  # several chunks
        torch.manual_seed(1)  # same random queries
        losses = loss_fn(la, F.normalize(a, dim=1), lb,
                         F.normalize(b, dim=1), mats, stride=STRIDE)
        grads = torch.autograd.grad(sum(losses.values()), leaves)
        results.append((losses, grads))
    (ln, gn), (le, ge) = results
    for k in ln:
        torch.testing.assert_close(le[k], ln[k], rtol=1e-5, atol=1e-6)
    assert ln['loss_boot_kpt'] > 0
    for a, b in zip(ge, gn):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_memory_efficient_keeps_no_similarity_matrix():
    logits_a, da, logits_b, db, mats = _inputs(2)
    saved = {}
    for efficient in (False, True):
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        a = da.clone().requires_grad_()
        loss_fn = BootstrapLoss(max_queries=None, memory_efficient=efficient)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss_fn(logits_a, F.normalize(a, dim=1), logits_b,
                    F.normalize(db, dim=1), mats, stride=STRIDE)
        saved[efficient] = total[0]
    # naive keeps (B, hw, hw) log-softmax matrices: 4 x 3 x 144 x 144
    assert saved[False] > 4 * 3 * (H * W)**2 * 4
    assert saved[True] < 0.25 * saved[False]
