# Copyright (c) mmuld contributors. All rights reserved.
"""Make mmengine checkpoints load under ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine
0.10.x calls ``torch.load`` without that argument, so ``load_from`` and
``--resume`` fail on the objects mmengine itself stores in checkpoints
(numpy scalars and arrays in ``meta``/``dataset_meta``, ``HistoryBuffer``
objects in the message hub state). Instead of turning the safety check off,
:func:`register_checkpoint_safe_globals` adds exactly those types to torch's
allow-list of safe globals.

``HistoryBuffer`` also pickles its statistics methods (``min``, ``max``,
``mean``, ``current``) as ``getattr(HistoryBuffer, name)``, and ``getattr``
must never be allow-listed. Those four are restored by
``HistoryBuffer.__setstate__`` anyway, so they are left out of the pickle
(custom statistics registered by users are still saved).

:func:`load_checkpoint_file` is the one way mmuld reads a checkpoint: always
``weights_only=True`` (a crafted pickle cannot run code), with errors that
name the file. :func:`register_checkpoint_safe_globals` also installs it as
mmengine's loader of local files, so ``load_from``, ``--resume`` and
``init_model`` go through it. :func:`find_resumable_checkpoint` picks the
newest checkpoint of a work dir that is intact (a run killed while writing
leaves a truncated file behind).
"""
import glob
import os
import os.path as osp
import pickle
import zipfile
from typing import List, Optional, Union

import numpy as np
import torch

_REGISTERED = False


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded."""


def _numpy_globals() -> List[object]:
    """Return the numpy callables/classes needed to unpickle arrays."""
    core = getattr(np, '_core', None) or np.core
    multiarray = core.multiarray
    out = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [
            getattr(dtypes, n) for n in dir(dtypes)
            if n.endswith('DType') and isinstance(getattr(dtypes, n), type)
        ]
    return out


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer.__getstate__`` without its built-in methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    self.__dict__.pop('statistics_methods', None)
    state = dict(self.__dict__)
    custom = {
        k: v
        for k, v in self._statistics_methods.items()
        if getattr(HistoryBuffer, k, None) is not v
    }
    if custom:
        state['statistics_methods'] = custom
    return state


def register_checkpoint_safe_globals() -> None:
    """Allow-list the non-tensor types that mmengine checkpoints contain.

    Safe to call many times; does nothing on torch < 2.4 (no allow-list).
    """
    global _REGISTERED
    if _REGISTERED or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner.checkpoint import CheckpointLoader
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    # `bytes` rebuilds the raw buffers of pickled numpy arrays
    torch.serialization.add_safe_globals(_numpy_globals() +
                                         [HistoryBuffer, bytes])
    # every local checkpoint mmengine loads goes through the safe loader
    CheckpointLoader.register_scheme(
        prefixes='', loader=_mmengine_local_loader, force=True)
    _REGISTERED = True


def _mmengine_local_loader(filename: str,
                           map_location: Union[str, None] = None) -> dict:
    return load_checkpoint_file(
        osp.expanduser(filename), map_location=map_location)


def load_checkpoint_file(filename: str,
                         map_location: Union[str, torch.device,
                                             None] = 'cpu') -> object:
    """``torch.load(filename, weights_only=True)`` with clear errors.

    Args:
        filename (str): A ``.pth`` file written by ``torch.save``.
        map_location (str | torch.device, optional): As in ``torch.load``.

    Returns:
        object: The loaded object (a dict for mmengine checkpoints).

    Raises:
        FileNotFoundError: The file does not exist.
        CheckpointError: The file is empty, truncated, not a checkpoint, or
            holds objects other than tensors and plain data (refused
            without running any of its code). The message names the file.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint not found: {filename}')
    if osp.getsize(filename) == 0:
        raise CheckpointError(f'checkpoint {filename} is empty (0 bytes): '
                              'the run that wrote it was probably killed')
    register_checkpoint_safe_globals()
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        glob_lines = [ln for ln in lines if 'GLOBAL' in ln]
        if glob_lines:
            raise CheckpointError(
                f'refused to load {filename}: it holds objects other than '
                f'tensors and plain data ({glob_lines[0]}); mmuld never '
                'unpickles code from a checkpoint') from None
        boilerplate = ('weights only load failed', 'please file an issue',
                       'check the documentation')
        detail = [
            ln for ln in lines
            if not ln.lower().startswith(boilerplate)
        ] or lines
        raise CheckpointError(
            f'cannot read checkpoint {filename}: truncated, corrupt or not '
            f'a torch checkpoint ({detail[-1][:200]})') from None
    except Exception as e:  # noqa: BLE001 - zip, EOF, index errors, ...
        msg = str(e).split('. ')[0][:200]
        raise CheckpointError(
            f'cannot read checkpoint {filename}: truncated, corrupt or not a '
            f'torch checkpoint ({type(e).__name__}: {msg})') from None


def is_intact_checkpoint(filename: str) -> bool:
    """Whether ``filename`` is a complete ``torch.save`` zip archive.

    Checks the zip directory and the CRC of every member; nothing is
    unpickled.
    """
    try:
        if not osp.isfile(filename) or osp.getsize(filename) == 0:
            return False
        with zipfile.ZipFile(filename) as zf:
            return zf.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def find_resumable_checkpoint(work_dir: str,
                              logger=None) -> Optional[str]:
    """The newest intact checkpoint of a work dir, for auto-resume.

    Starts from mmengine's ``last_checkpoint`` record; when that file is
    missing, truncated or corrupt, falls back to the other ``*.pth`` files
    of ``work_dir``, newest (last modified) first, with one warning per
    skipped file.

    Args:
        work_dir (str): The run's work dir.
        logger (optional): Logger for the warnings (default: mmengine's
            current logger).

    Returns:
        str | None: Path of the checkpoint to resume from; None when there
        is none (the run starts from scratch).
    """
    from mmengine.logging import print_log
    candidates = []
    record = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(record):
        with open(record) as f:
            last = f.read().strip()
        if last:
            candidates.append(last)

    others = sorted(
        glob.glob(osp.join(work_dir, '*.pth')),
        key=osp.getmtime,
        reverse=True)
    seen = {osp.realpath(c) for c in candidates}
    candidates += [p for p in others if osp.realpath(p) not in seen]
    for path in candidates:
        if is_intact_checkpoint(path):
            return path
        state = (f'{os.path.getsize(path)} bytes, truncated or corrupt'
                 if osp.exists(path) else 'missing')
        print_log(
            f'cannot resume from {path} ({state}); trying the previous '
            'checkpoint',
            logger=logger or 'current',
            level=30)
    return None


def save_checkpoint_atomic(runner, filename: str) -> str:
    """``runner.save_checkpoint(runner.work_dir, filename)``, written to
    ``filename + '.part'`` first and renamed when complete, so that a run
    killed (or a disk full) while saving never leaves a truncated file under
    the final name.

    Args:
        runner (Runner): The mmengine runner.
        filename (str): File name in the work dir.

    Returns:
        str: The saved file's path.
    """
    final = osp.join(runner.work_dir, filename)
    part = final + '.part'
    try:
        runner.save_checkpoint(runner.work_dir, filename + '.part')
        os.replace(part, final)
    finally:
        if osp.exists(part):
            os.remove(part)
    return final
