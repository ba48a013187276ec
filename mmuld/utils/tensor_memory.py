# Copyright (c) mmuld contributors. All rights reserved.
"""Peak tensor memory of a computation on any device (the CPU included)."""
import weakref
from typing import Dict, Iterable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class TensorMemoryTracker(TorchDispatchMode):
    """Tensor memory allocated inside a ``with`` block, and its peak.

    The CPU counterpart of ``torch.cuda.max_memory_allocated``: every
    storage an operator creates inside the block is counted from its
    creation until it is freed (a weak reference to the storage; views
    share their base's storage and count once). Storages that existed
    before the block (parameters, optimizer states, inputs) are counted as
    a constant through :meth:`add_existing`. Allocator overhead (rounding,
    caching, fragmentation) is not included.

    Example::

        tracker = TensorMemoryTracker()
        tracker.add_existing(model.parameters())
        with tracker:
            loss = model(x).sum()
            loss.backward()
        print(tracker.peak / 1e9, 'GB')

    Attributes:
        current (int): Bytes of the counted storages alive now.
        peak (int): Most bytes alive at once since the block began.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: Dict[int, weakref.ref] = {}

    def add_existing(self, tensors: Iterable[Tensor]) -> None:
        """Count storages that exist already (each once).

        Args:
            tensors (Iterable[Tensor]): E.g. the parameters, buffers and
                optimizer states of a model.
        """
        for t in tensors:
            if isinstance(t, Tensor):
                self._track(t)

    def _track(self, t: Tensor) -> None:
        storage = t.untyped_storage()
        key = id(storage)
        if key in self._live and self._live[key]() is storage:
            return
        nbytes = storage.nbytes()

        def freed(_ref, key=key, nbytes=nbytes):
            if self._live.get(key) is _ref:
                del self._live[key]
                self.current -= nbytes

        self._live[key] = weakref.ref(storage, freed)
        self.current += nbytes
        self.peak = max(self.peak, self.current)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.layout == torch.strided:
                self._track(t)
        return out


def optimizer_state_tensors(optimizer: torch.optim.Optimizer) -> list:
    """The tensors of an optimizer's state (e.g. Adam's moments).

    Args:
        optimizer (torch.optim.Optimizer): The optimizer.

    Returns:
        list[Tensor]: Its state tensors.
    """
    return [
        v for state in optimizer.state.values() for v in state.values()
        if isinstance(v, Tensor)
    ]
