# Copyright (c) mmuld contributors. All rights reserved.
"""Checks a benchmark run makes before its first iteration.

A printed result must not be made from stale, foreign or leaked inputs:

* :func:`check_splits` reads both annotation files and refuses, before any
  training, what would make the result wrong or stop the run after hours:
  an empty split, NaN or infinite keypoints, a test image that cannot be
  read, a test image listed twice, and test images that are also training
  images (the same file, or identical pixels; allowed only on request, and
  then reported). It also lists what is only worth a warning: training
  images listed twice, objects that
  mmpose's instance filter drops (no labelled point, ``iscrowd``, every
  coordinate <= 0), training images that cannot be read (skipped).
* :func:`run_fingerprint` digests what a training run is made from (the
  training config, the data files, the code) so that a rerun reuses stage
  checkpoints only when they were made from the same inputs.
"""
import glob
import hashlib
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

_SHOWN = 3


class DataCheckError(ValueError):
    """Data that would make a benchmark result wrong."""


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise DataCheckError(f'cannot read annotation file {path}: {e}')


def _pixels_digest(path: str) -> Optional[str]:
    """sha256 of the decoded pixels (None: the image cannot be read)."""
    try:
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        return None
    h = hashlib.sha256(str(img.shape).encode())
    h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()


def _names(paths: Sequence[str]) -> str:
    more = f' (+{len(paths) - _SHOWN} more)' if len(paths) > _SHOWN else ''
    return ', '.join(paths[:_SHOWN]) + more


def _split_summary(ann_file: str, data_root: str) -> Dict[str, object]:
    data = _read_json(ann_file)
    images = {im['id']: im for im in data.get('images') or []}
    anns = data.get('annotations') or []
    if not images or not anns:
        raise DataCheckError(
            f'{ann_file} holds no {"image" if not images else "annotation"}:'
            ' an empty split gives no result')
    paths, dropped, seen, duplicates = [], [], set(), []
    for ann in anns:
        im = images.get(ann.get('image_id'))
        if im is None:
            raise DataCheckError(
                f'{ann_file}: annotation {ann.get("id")} refers to image '
                f'{ann.get("image_id")}, which is not in "images"')
        path = osp.normpath(osp.join(data_root, im['file_name']))
        kp = np.asarray(ann.get('keypoints') or [], dtype=np.float64)
        if kp.size % 3 or not kp.size:
            raise DataCheckError(
                f'{ann_file}: {im["file_name"]} has keypoints of length '
                f'{kp.size}, not a multiple of 3')
        kp = kp.reshape(-1, 3)
        if not np.isfinite(kp).all():
            raise DataCheckError(
                f'{ann_file}: {im["file_name"]} has NaN or infinite '
                'keypoints')
        if (ann.get('num_keypoints', 1) == 0 or ann.get('iscrowd', 0)
                or (kp[:, :2] <= 0).all()):
            dropped.append(path)
        if path in seen:
            duplicates.append(path)
        seen.add(path)
        paths.append(path)
    return dict(paths=paths, dropped=dropped, duplicates=duplicates,
                raw=json.dumps(data, sort_keys=True))


def check_splits(train_ann: str,
                 test_ann: str,
                 data_root: str = '',
                 allow_overlap: bool = False,
                 warn=print) -> Dict[str, object]:
    """Refuse a train / test pair that would give a wrong result.

    Args:
        train_ann (str): Training json.
        test_ann (str): Test json.
        data_root (str): Prefix of the image file names.
        allow_overlap (bool): Accept test images that are also training
            images (reported as ``overlap``).
        warn (callable): Called with one line per warning.

    Returns:
        dict: ``train_images``, ``test_images``, ``overlap`` (test images
        also in training, by file or pixels), ``allow_overlap``,
        ``duplicates`` (per split), ``dropped`` (per split: objects that
        mmpose's instance filter drops) and ``unreadable_train`` (training
        images that cannot be read; the dataset skips them).

    Raises:
        DataCheckError: Naming the file and what is wrong.
    """
    train = _split_summary(train_ann, data_root)
    test = _split_summary(test_ann, data_root)
    if test['duplicates']:
        # the benchmark scores one object per test image: a second listing
        # would be scored against the other listing's ground truth
        raise DataCheckError(
            f'{test_ann} lists {len(test["duplicates"])} images more than '
            f'once ({_names(test["duplicates"])}); the benchmark scores one '
            'object per test image: list each image once')
    if train['raw'] == test['raw'] and not allow_overlap:
        raise DataCheckError(
            f'the test json {test_ann} is the training json {train_ann}: '
            'the test images would be training images')
    test_digest = {}
    for path in dict.fromkeys(test['paths']):
        digest = _pixels_digest(path)
        if digest is None:
            raise DataCheckError(f'cannot read test image {path}')
        test_digest[path] = digest
    by_pixels = {d: p for p, d in test_digest.items()}
    overlap, unreadable = [], []
    for path in dict.fromkeys(train['paths']):
        if path in test_digest:
            overlap.append(path)
            continue
        digest = _pixels_digest(path)
        if digest is None:
            unreadable.append(path)
        elif digest in by_pixels:
            overlap.append(f'{by_pixels[digest]} (= {path})')
    if overlap and not allow_overlap:
        raise DataCheckError(
            f'{len(overlap)} test images of {test_ann} are also training '
            f'images of {train_ann} (same file or identical pixels: '
            f'{_names(overlap)}); the NME would be measured on seen data. '
            'Use disjoint splits, or pass --allow-overlap to accept it (the '
            'report then says so)')
    report = dict(
        train_images=len(set(train['paths'])),
        test_images=len(test_digest),
        overlap=overlap,
        allow_overlap=bool(allow_overlap),
        duplicates=dict(train=train['duplicates'],
                        test=test['duplicates']),
        dropped=dict(train=train['dropped'], test=test['dropped']),
        unreadable_train=unreadable)
    if overlap:
        warn(f'{len(overlap)} test images are also training images '
             '(--allow-overlap): the NME is optimistic')
    for split, ann in (('train', train_ann), ('test', test_ann)):
        if report['duplicates'][split]:
            warn(f'{ann}: {len(report["duplicates"][split])} images listed '
                 f'more than once ({_names(report["duplicates"][split])})')
        if report['dropped'][split]:
            warn(f'{ann}: {len(report["dropped"][split])} objects without '
                 'a labelled point (num_keypoints 0, iscrowd or every '
                 'coordinate <= 0) are dropped by the pipeline and not '
                 f'evaluated ({_names(report["dropped"][split])})')
    if unreadable:
        warn(f'{len(unreadable)} training images cannot be read and are '
             f'skipped ({_names(unreadable)})')
    return report


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def code_digest(package_dir: str) -> str:
    """sha256 over the package's Python sources (path and content)."""
    h = hashlib.sha256()
    for path in sorted(glob.glob(osp.join(package_dir, '**', '*.py'),
                                 recursive=True)):
        h.update(osp.relpath(path, package_dir).encode())
        h.update(_file_digest(path).encode())
    return h.hexdigest()


def run_fingerprint(config: dict, ann_files: Sequence[str],
                    image_paths: Sequence[str],
                    package_dir: str) -> Dict[str, str]:
    """What a training run is made from, one digest per input.

    Args:
        config (dict): The training config (``Config.to_dict()``; keys
            that do not change the result, such as ``work_dir``, removed
            by the caller).
        ann_files (Sequence[str]): Annotation files (content).
        image_paths (Sequence[str]): Images (path, size and mtime: a world
            drawn again into the same folder counts as new).
        package_dir (str): The code's package folder (its sources).

    Returns:
        dict: ``config``, ``data`` and ``code`` digests.
    """
    cfg = hashlib.sha256(
        json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    data = hashlib.sha256()
    for path in ann_files:
        data.update(_file_digest(path).encode())
    for path in sorted(set(image_paths)):
        try:
            st = osp.getsize(path), int(osp.getmtime(path) * 1e9)
        except OSError:
            st = None
        data.update(f'{path}:{st}'.encode())
    return dict(config=cfg, data=data.hexdigest(),
                code=code_digest(package_dir))


def fingerprint_mismatch(old: Optional[dict], new: dict) -> List[str]:
    """The inputs (``config``, ``data``, ``code``) whose digests differ;
    ``['no record']`` when there is no earlier fingerprint."""
    if not old:
        return ['no record']
    return [k for k in new if old.get(k) != new[k]]
