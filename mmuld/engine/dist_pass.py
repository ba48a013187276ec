# Copyright (c) mmuld contributors. All rights reserved.
"""Passes of a model over a dataset for clustering, on every rank.

The clustering rounds of D-ULD / D-ULD++ and the ZeroShot fit share the
same shape: every rank runs the model over its share of the images without
autograd, the shares are gathered, rank 0 clusters them and the result is
broadcast. These helpers are that shape, written once.
"""
from typing import Any, Callable, Iterable, List

import mmengine
import torch
from mmengine.dist import (all_gather_object, broadcast_object_list,
                           get_rank, get_world_size)
from torch import nn


def inference_pass(model: nn.Module, loader: Iterable,
                   step: Callable[[dict], None],
                   progress_bar: bool = True) -> None:
    """Run ``step`` on every preprocessed batch of ``loader``.

    The model is in eval mode and autograd is off for the whole pass (a
    round stores plain tensors only, so the memory it holds is what it
    stores, whatever the number of images); its mode is restored after.
    Rank 0 shows a progress bar unless ``progress_bar`` is False.

    Args:
        model (nn.Module): The unwrapped model (with ``data_preprocessor``).
        loader (Iterable): Batches of data samples.
        step (Callable): Called with each ``data_preprocessor(batch)``.
        progress_bar (bool): Show a progress bar (rank 0). Defaults to
            True.
    """
    was_training = model.training
    model.eval()
    progress = None
    if progress_bar and get_rank() == 0 and hasattr(loader, '__len__'):
        progress = mmengine.ProgressBar(len(loader))
    try:
        with torch.no_grad():
            for data in loader:
                step(model.data_preprocessor(data, False))
                if progress is not None:
                    progress.update()
    finally:
        if progress is not None:
            progress.file.write('\n')  # the bar leaves the line open
            progress.file.flush()
        model.train(was_training)


def gather(local: Any) -> List[Any]:
    """Every rank's ``local`` (picklable), in rank order."""
    return all_gather_object(local) if get_world_size() > 1 else [local]


def on_rank0(fn: Callable[[], Any]) -> Any:
    """``fn()`` computed on rank 0 and broadcast to every rank.

    Args:
        fn (Callable): Computes a picklable result; called on rank 0 only.

    Returns:
        Any: Rank 0's result, on every rank.
    """
    payload = [fn() if get_rank() == 0 else None]
    if get_world_size() > 1:
        broadcast_object_list(payload, src=0)
    return payload[0]


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    return on_rank0(lambda: obj)
