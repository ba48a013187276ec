# Copyright (c) mmuld contributors. All rights reserved.
"""Scores of discovered landmarks against ground truth and two baselines.

Used by ``tools/analysis/learnability.py``: every method and baseline is
scored by the same code from the same inputs, so the table compares like
with like. Inputs are the ``landmarks.json`` files written by
:class:`LandmarkDumpMetric` (image pixels, one entry per image, with the
crop box of each input) and the 5-point COCO annotation files.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmuld.models.utils.coords import input_to_image_coords
from .functional import (forward_backward_nme, interocular_distance,
                         per_landmark_accuracy)


def load_gt(ann_file: str, data_root: str = '') -> Dict[str, np.ndarray]:
    """Ground truth of a COCO face json, keyed by image path.

    Args:
        ann_file (str): Annotation file (one face per image).
        data_root (str): Prefix of the image file names.

    Returns:
        dict: image path -> (G, 2) landmarks.
    """
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'cannot read annotation file {ann_file}: {e}')
    names = {im['id']: im['file_name'] for im in data.get('images', [])}
    out = {}
    for ann in data.get('annotations', []):
        kp = np.asarray(ann['keypoints'], dtype=np.float64).reshape(-1, 3)
        path = osp.join(data_root, names[ann['image_id']])
        out[osp.normpath(path)] = kp[:, :2]
    if not out:
        raise ValueError(f'{ann_file} has no annotations')
    return out


def load_landmarks(path: str) -> List[dict]:
    """Read a ``landmarks.json`` of :class:`LandmarkDumpMetric`."""
    with open(path) as f:
        data = json.load(f)
    if data.get('format') != 'mmuld.landmarks.v1':
        raise ValueError(f'{path} is not an mmuld landmarks file')
    return data['images']


def split_arrays(entries: Sequence[dict], gt: Dict[str, np.ndarray],
                 split: str) -> Dict[str, np.ndarray]:
    """Stack predictions, validity, GT and crops of one split."""
    rows = [e for e in entries if e.get('uld_split') == split]
    if not rows:
        raise ValueError(f'no {split!r} image in the landmarks file')
    missing = [e['img_path'] for e in rows
               if osp.normpath(e['img_path']) not in gt]
    if missing:
        raise ValueError(f'{len(missing)} images have no ground truth, e.g. '
                         f'{missing[0]}')
    return dict(
        pred=np.array([e['keypoints'] for e in rows], dtype=np.float64),
        valid=np.array([e['visible'] for e in rows], dtype=bool),
        gt=np.stack([gt[osp.normpath(e['img_path'])] for e in rows]),
        crop=np.array([e.get('crop') or [np.nan] * 4 for e in rows],
                      dtype=np.float64),
        input_size=np.array([e.get('input_size') or [np.nan] * 2
                             for e in rows], dtype=np.float64),
        paths=[e['img_path'] for e in rows])


def border_fraction(pred: np.ndarray, valid: np.ndarray, crop: np.ndarray,
                    band: np.ndarray) -> float:
    """Fraction of valid landmarks within ``band`` pixels of the crop edge.

    Args:
        pred (np.ndarray): (N, K, 2) image pixels.
        valid (np.ndarray): (N, K) bool.
        crop (np.ndarray): (N, 4) crop boxes ``x0, y0, x1, y1`` (pixel
            edges) in image pixels.
        band (np.ndarray): (N,) width of the border band (2 map cells in
            image pixels).

    Returns:
        float: the fraction (NaN without valid landmarks).
    """
    x, y = pred[..., 0], pred[..., 1]
    b = band[:, None]
    near = (x < crop[:, 0:1] + b) | (x > crop[:, 2:3] - b) | \
        (y < crop[:, 1:2] + b) | (y > crop[:, 3:4] - b)
    if not valid.any():
        return float('nan')
    return float(near[valid].mean())


def score(train: dict, test: dict, band: np.ndarray,
          norm_indices: Tuple[int, int] = (0, 1)) -> Dict[str, object]:
    """Forward / backward NME, per-landmark accuracy and border fraction.

    Args:
        train (dict): :func:`split_arrays` of the regressor-fitting split.
        test (dict): The same for the evaluated split.
        band (np.ndarray): (M,) border band of the test images (pixels).
        norm_indices (tuple): GT indices of the eyes (inter-ocular norm).

    Returns:
        dict: ``forward``, ``backward`` (percent), ``per_landmark_accuracy``
        (per GT point, fraction), ``per_landmark_accuracy_mean`` and
        ``border_fraction``.
    """
    norm = interocular_distance(test['gt'], *norm_indices)
    res = forward_backward_nme(
        train['pred'], train['gt'], test['pred'], test['gt'], norm,
        pred_train_valid=train['valid'], pred_test_valid=test['valid'])
    acc = per_landmark_accuracy(test['pred'], test['gt'], norm,
                                pred_valid=test['valid'])
    return dict(
        forward=float(res['forward']),
        backward=float(res['backward']),
        per_landmark_accuracy=[float(v) for v in acc['gt_accuracy']],
        per_landmark_accuracy_mean=float(acc['mean']),
        border_fraction=border_fraction(test['pred'], test['valid'],
                                        test['crop'], band))


def pseudo_label_rounds(folder: str, train: dict,
                        norm_indices: Tuple[int, int] = (0, 1)
                        ) -> List[Dict[str, object]]:
    """How good the training pseudo-labels of every clustering round were.

    Each round saved by :class:`PseudoLabelHook` (``round_XXX_iter_N.npz``:
    keypoints in input pixels, bank row = training sample index) is mapped
    to image pixels with the crops of ``train`` (the training split of a
    ``landmarks.json``, in dataset order) and scored against the ground
    truth like a method: forward / backward NME, 2-fold cross-validated
    over the training images (the first half fits the regressors and the
    second is scored, then the other way round). Whether self-training
    improves its own targets round after round shows here, which the
    clustering log cannot tell without ground truth.

    Args:
        folder (str): The run's ``pseudo_labels`` folder.
        train (dict): :func:`split_arrays` of the training split.
        norm_indices (tuple): GT indices of the eyes (inter-ocular norm).

    Returns:
        list[dict]: Per round ``round``, ``iteration``, ``stage``,
        ``valid`` (share of landmark slots with a keypoint), ``forward``
        and ``backward`` (percent).

    Raises:
        ValueError: A round's bank has another number of rows than the
            training split.
    """
    out = []
    n = len(train['gt'])
    crop = train['crop']
    centre = (crop[:, :2] + crop[:, 2:]) / 2  # crop = centre -+ scale / 2
    scale = crop[:, 2:] - crop[:, :2]
    for path in sorted(glob.glob(osp.join(folder, 'round_*.npz'))):
        data = np.load(path)
        kpts, valid = data['keypoints'], data['valid'].astype(bool)
        if len(kpts) != n:
            raise ValueError(f'{path} has {len(kpts)} images, the training '
                             f'split {n}')
        img = np.stack([
            input_to_image_coords(kpts[i], centre[i], scale[i],
                                  train['input_size'][i]).numpy()
            for i in range(n)
        ]).astype(np.float64)
        half = n // 2
        folds = [(slice(0, half), slice(half, n)),
                 (slice(half, n), slice(0, half))]
        fwd, bwd, weights = [], [], []
        for fit, ev in folds:
            gt_ev = train['gt'][ev]
            res = forward_backward_nme(
                img[fit], train['gt'][fit], img[ev], gt_ev,
                interocular_distance(gt_ev, *norm_indices),
                pred_train_valid=valid[fit], pred_test_valid=valid[ev])
            fwd.append(float(res['forward']))
            bwd.append(float(res['backward']))
            weights.append(len(gt_ev))
        meta = {}
        side = path[:-len('.npz')] + '.json'
        if osp.isfile(side):
            with open(side) as f:
                meta = json.load(f)
        out.append(dict(
            round=int(data['round']), iteration=int(data['iteration']),
            stage=meta.get('stage'), valid=float(valid.mean()),
            forward=float(np.average(fwd, weights=weights)),
            backward=float(np.average(bwd, weights=weights))))
    return out


def rounds_table(rounds: Sequence[Dict[str, object]]) -> str:
    """Markdown table of :func:`pseudo_label_rounds`."""
    lines = ['| round | iteration | stage | landmark slots filled | '
             'forward NME % | backward NME % |', '| --- ' * 6 + '|']
    for r in rounds:
        lines.append(f'| {r["round"]} | {r["iteration"]} | {r["stage"]} | '
                     f'{100 * r["valid"]:.0f} % | {r["forward"]:.1f} | '
                     f'{r["backward"]:.1f} |')
    return '\n'.join(lines) + '\n'


def mean_shape_baseline(train: dict, test: dict,
                        norm_indices: Tuple[int, int] = (0, 1)) -> float:
    """Forward NME (%) of predicting the mean training face on every crop.

    The GT of the training images is expressed relative to each crop box
    (0..1), averaged, and put back into every test crop.
    """
    def rel(gt, crop):
        wh = (crop[:, 2:4] - crop[:, 0:2])[:, None]
        return (gt - crop[:, None, 0:2]) / wh

    mean = rel(train['gt'], train['crop']).mean(0)
    wh = (test['crop'][:, 2:4] - test['crop'][:, 0:2])[:, None]
    pred = test['crop'][:, None, 0:2] + mean[None] * wh
    norm = interocular_distance(test['gt'], *norm_indices)
    err = np.linalg.norm(pred - test['gt'], axis=-1).mean(1) / norm
    return float(err.mean() * 100)


def random_points_baseline(train: dict, test: dict, k: int, band: np.ndarray,
                           seed: int = 0,
                           norm_indices: Tuple[int, int] = (0, 1)) -> dict:
    """Forward / backward NME of K uniform random points in every crop."""
    rng = np.random.default_rng(seed)

    def draw(split):
        c = split['crop']
        u = rng.uniform(size=(len(c), k, 2))
        return c[:, None, 0:2] + u * (c[:, None, 2:4] - c[:, None, 0:2])

    tr = dict(train, pred=draw(train), valid=np.ones((len(train['gt']), k),
                                                     bool))
    te = dict(test, pred=draw(test), valid=np.ones((len(test['gt']), k),
                                                   bool))
    return score(tr, te, band, norm_indices)


def markdown_table(results: Dict[str, dict], landmark_names: Sequence[str]
                   ) -> str:
    """The learnability table (one row per method or baseline)."""
    head = ('| method | forward NME % | backward NME % | '
            'per-landmark acc. (mean) | ' +
            ' | '.join(landmark_names) + ' | landmarks near crop border |')
    sep = '|' + ' --- |' * (5 + len(landmark_names))
    lines = [head, sep]

    def f(v, pct=False):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return 'n/a'
        return f'{100 * v:.1f} %' if pct else f'{v:.2f}'

    for name, r in results.items():
        accs = r.get('per_landmark_accuracy') or [None] * len(landmark_names)
        lines.append(
            f'| {name} | {f(r.get("forward"))} | {f(r.get("backward"))} | '
            f'{f(r.get("per_landmark_accuracy_mean"), True)} | ' +
            ' | '.join(f(a, True) for a in accs) +
            f' | {f(r.get("border_fraction"), True)} |')
    return '\n'.join(lines) + '\n'


def landmarks_grid(rows: Dict[str, dict], out_file: str, num_images: int = 8,
                   tile: int = 128) -> str:
    """Draw test crops with their landmarks, one row per method.

    Args:
        rows (dict): name -> ``split_arrays`` of the test split (``pred``,
            ``valid``, ``crop``, ``paths``); the GT row uses ``pred=gt``.
        out_file (str): PNG path.
        num_images (int): Columns.
        tile (int): Tile side in pixels.

    Returns:
        str: ``out_file``.
    """
    from mmuld.visualization import landmark_colors
    k = max(len(r['pred'][0]) for r in rows.values())
    # one fixed colour per landmark id, as ULDLocalVisualizer (RGB -> BGR)
    colours = [tuple(int(v) for v in c[::-1]) for c in landmark_colors(k)]
    lines = []
    for name, r in rows.items():
        tiles = []
        for i in range(min(num_images, len(r['paths']))):
            img = cv2.imread(r['paths'][i], cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f'cannot read image {r["paths"][i]}')
            x0, y0, x1, y1 = r['crop'][i]
            s = tile / max(x1 - x0, y1 - y0)
            m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]])
            t = cv2.warpAffine(img, m, (tile, tile))
            for j, (p, v) in enumerate(zip(r['pred'][i], r['valid'][i])):
                if not v:
                    continue
                q = (int(round(p[0] * s - x0 * s)),
                     int(round(p[1] * s - y0 * s)))
                cv2.circle(t, q, 4, colours[j], -1, cv2.LINE_AA)
                cv2.circle(t, q, 4, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(t)
        label = np.full((tile, 110, 3), 255, np.uint8)
        for j, word in enumerate(name.split(' ')[:4]):
            cv2.putText(label, word, (4, 24 + 22 * j),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                        cv2.LINE_AA)
        lines.append(np.concatenate([label] + tiles, 1))
    width = max(x.shape[1] for x in lines)
    lines = [np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)),
                    constant_values=255) for x in lines]
    if not cv2.imwrite(out_file, np.concatenate(lines, 0)):
        raise OSError(f'could not write {out_file}')
    return out_file


def verdict(results: Dict[str, dict], method: str = 'D-ULD++',
            border_limit: float = 0.05) -> Optional[str]:
    """One line saying whether ``method`` discovers landmarks."""
    r = results.get(method)
    base = results.get('mean shape (baseline)')
    if not r or not base:
        return None
    ratio = r['forward'] / base['forward']
    ok = ratio <= 1 / 3 and r.get('border_fraction', 1.0) < border_limit
    return (f'{method}: forward NME {r["forward"]:.2f} % = {ratio:.2f} x the '
            f'mean-shape baseline, {100 * r.get("border_fraction", 0):.1f} % '
            f'of landmarks near the crop border -> '
            f'{"discovers landmarks" if ok else "does NOT beat the baselines"}'
            )
