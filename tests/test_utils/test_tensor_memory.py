# Copyright (c) mmuld contributors. All rights reserved.
"""TensorMemoryTracker counts what is alive, with known answers."""
import torch

from mmuld.utils.tensor_memory import (TensorMemoryTracker,
                                       optimizer_state_tensors)

MIB = 2**20


def test_counts_live_storages_and_their_peak():
    x = torch.randn(MIB // 4)  # 1 MiB of float32
    tracker = TensorMemoryTracker()
    tracker.add_existing([x, x[:10], x.view(-1)])  # one storage
    assert tracker.current == MIB
    with tracker:
        y = x * 2  # 2 MiB alive
        z = y + 1  # 3
        del y  # 2
        w = z.view(-1)  # a view: nothing new
        v = z * 3  # 3
        del z, w, v  # 1
    assert tracker.current == MIB
    assert tracker.peak == 3 * MIB


def test_counts_the_backward_pass_and_gradients():
    a = torch.randn(MIB // 4, requires_grad=True)
    tracker = TensorMemoryTracker()
    tracker.add_existing([a])
    with tracker:
        b = (a * 2).exp()  # exp keeps its output for the backward pass
        b.sum().backward()
        del b
    # a and its gradient stay; the peak saw at least a, a * 2, b and a
    # gradient at once
    assert tracker.current == 2 * MIB
    assert tracker.peak >= 4 * MIB


def test_optimizer_state_tensors():
    p = torch.nn.Parameter(torch.randn(8))
    opt = torch.optim.Adam([p])
    assert optimizer_state_tensors(opt) == []
    p.grad = torch.ones(8)
    opt.step()
    states = optimizer_state_tensors(opt)
    assert sum(t.numel() for t in states if t.dim()) == 16  # two moments
