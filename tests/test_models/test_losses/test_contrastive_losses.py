# Copyright (c) mmuld contributors. All rights reserved.
import math

import pytest
import torch

from mmuld.models.losses import (DescriptorContrastiveLoss,
                                 LatentContrastiveLoss,
                                 pairwise_contrastive_loss)
from mmuld.registry import MODELS

CODES = [[0., 0.], [3., 4.], [0., 0.5], [1., 0.]]
LABELS = [0, 0, 1, 1]


def _hand_eq3(codes, labels, m, squared=False):
    """Eq. 3 by hand: mean over positive pairs + mean over negative pairs."""
    pos, neg = [], []
    for i in range(len(codes)):
        for j in range(i + 1, len(codes)):
            d = math.dist(codes[i], codes[j])
            if labels[i] == labels[j]:
                pos.append(d**2 if squared else d)
            else:
                h = max(0.0, m - d)
                neg.append(h**2 if squared else h)
    mean = (lambda x: sum(x) / len(x) if x else 0.0)
    return mean(pos) + mean(neg)


def test_latent_contrastive_eq3_hand_values():
    loss_fn = MODELS.build(dict(type='LatentContrastiveLoss', margin=0.8))
    assert isinstance(loss_fn, LatentContrastiveLoss)
    codes = torch.tensor(CODES, requires_grad=True)
    loss = loss_fn(codes, torch.tensor(LABELS))
    # positives: d(0,1)=5, d(2,3)=sqrt(1.25); negatives: only d(0,2)=0.5
    # is inside the margin -> hinge 0.3, averaged over 4 negative pairs
    expected = (5.0 + math.sqrt(1.25)) / 2 + 0.3 / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert loss.item() == pytest.approx(_hand_eq3(CODES, LABELS, 0.8),
                                        rel=1e-5)
    loss.backward()
    assert torch.isfinite(codes.grad).all()

    loss_w = LatentContrastiveLoss(margin=2.0, loss_weight=0.5)(
        codes, torch.tensor(LABELS))
    assert loss_w.item() == pytest.approx(
        0.5 * _hand_eq3(CODES, LABELS, 2.0), rel=1e-5)


def test_latent_contrastive_ignore_and_empty():
    codes = torch.tensor(CODES, requires_grad=True)
    loss_fn = LatentContrastiveLoss(margin=0.8)
    # label -1 ignored: remaining codes 0, 2, 3 -> positive (2, 3) only
    labels = torch.tensor([0, -1, 1, 1])
    expected = _hand_eq3([CODES[0], CODES[2], CODES[3]], [0, 1, 1], 0.8)
    assert loss_fn(codes, labels).item() == pytest.approx(expected, rel=1e-5)
    valid = torch.tensor([True, True, False, False])
    assert loss_fn(codes, torch.tensor(LABELS), valid).item() == \
        pytest.approx(5.0, rel=1e-5)
    # no pair at all -> zero loss still attached to the graph
    empty = loss_fn(codes[:1], torch.tensor([0]))
    assert empty.item() == 0.0 and empty.requires_grad
    empty.backward()
    assert codes.grad is not None and codes.grad.abs().sum() == 0
    # identical codes: finite gradients
    same = torch.zeros(3, 4, requires_grad=True)
    loss_fn(same, torch.tensor([1, 1, 2])).backward()
    assert torch.isfinite(same.grad).all()


def test_descriptor_contrastive_hand_values():
    desc = torch.tensor(CODES)
    labels = torch.tensor(LABELS)
    loss = DescriptorContrastiveLoss(margin=0.8)(desc, labels)
    assert loss.item() == pytest.approx(_hand_eq3(CODES, LABELS, 0.8),
                                        rel=1e-5)
    loss_sq = DescriptorContrastiveLoss(margin=0.8, squared=True)(desc, labels)
    # squared: positives 25 and 1.25, negative hinge 0.3^2 over 4 pairs
    assert loss_sq.item() == pytest.approx((25 + 1.25) / 2 + 0.09 / 4,
                                           rel=1e-5)
    # (B, N, D) input with a validity mask is flattened
    loss_3d = DescriptorContrastiveLoss(margin=0.8)(
        desc.view(2, 2, 2), labels.view(2, 2),
        torch.ones(2, 2, dtype=torch.bool))
    assert loss_3d.item() == pytest.approx(loss.item(), rel=1e-6)


def test_descriptor_contrastive_subsampling_and_errors():
    torch.manual_seed(0)
    desc = torch.nn.functional.normalize(torch.randn(200, 8), dim=1)
    labels = torch.randint(0, 5, (200, ))
    loss = DescriptorContrastiveLoss(max_samples=50)(desc, labels)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match='labels'):
        pairwise_contrastive_loss(desc, labels[:3], 0.8)
    with pytest.raises(ValueError, match='margin'):
        DescriptorContrastiveLoss(margin=-1)


def test_contrastive_loss_decreases_when_clusters_separate():
    labels = torch.tensor([0, 0, 1, 1])
    mixed = torch.tensor([[1., 0.], [0., 1.], [1., 0.], [0., 1.]])
    separated = torch.tensor([[1., 0.], [1., 0.], [0., 1.], [0., 1.]])
    loss_fn = DescriptorContrastiveLoss(margin=0.8)
    assert loss_fn(separated, labels) < loss_fn(mixed, labels)
    assert loss_fn(separated, labels).item() == pytest.approx(0.0, abs=1e-5)
