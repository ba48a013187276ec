# Copyright (c) mmuld contributors. All rights reserved.
"""Scores of discovered landmarks against ground truth and two baselines.

Used by :func:`~mmuld.evaluation.learnability_run.run_learnability`
(``tools/analysis/learnability.py``): every method and baseline is scored
by the same code from the same inputs, so the table compares like with
like. Inputs are the ``landmarks.json`` files written by
:class:`LandmarkDumpMetric` (image pixels, one entry per image, with the
crop box of each input) and COCO keypoint annotation files of any number
of named points (``categories[0].keypoints``). Besides the NME, every
method gets the accuracy of each ground-truth part, its worst part and the
spread of its landmarks (:func:`~mmuld.evaluation.functional.
part_coverage`): a low NME from landmarks bunched on one part is not
discovery.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from mmuld.models.utils.coords import input_to_image_coords
from .functional import (Normaliser, forward_backward_nme, normaliser,
                         part_coverage)

#: A part is *hit* in an image when a landmark (matched one-to-one to the
#: parts) lies within this many normalisers of it (D-ULD++ Fig. 4).
PART_HIT_THR = 0.2
#: A part is *found* when it is hit in at least this share of the images
#: (and the verdict says "discovers landmarks" only when every part is).
PART_FOUND_AT = 0.6


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


def keypoint_names(ann_file: str) -> List[str]:
    """The point names of a COCO keypoint json (its first category's
    ``keypoints``; ``point_i`` where the file names none).

    Raises:
        ValueError: The file cannot be read or holds no annotation.
    """
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'cannot read annotation file {ann_file}: {e}')
    anns = data.get('annotations') or []
    if not anns:
        raise ValueError(f'{ann_file} has no annotations')
    num = len(anns[0]['keypoints']) // 3
    cats = data.get('categories') or [{}]
    names = list(cats[0].get('keypoints') or [])
    if len(names) != num:
        names = [f'point_{i}' for i in range(num)]
    return names


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
          norm_indices: Normaliser = (0, 1),
          names: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Forward / backward NME, part coverage and border fraction.

    Args:
        train (dict): :func:`split_arrays` of the regressor-fitting split.
        test (dict): The same for the evaluated split.
        band (np.ndarray): (M,) border band of the test images (pixels).
        norm_indices (tuple | str): The normaliser (:data:`Normaliser`):
            two GT points (the eyes: inter-ocular distance) or ``'bbox'``.
        names (Sequence[str], optional): The G part names (default
            ``point_i``).

    Returns:
        dict: ``forward``, ``backward`` (percent), ``per_landmark_accuracy``
        (per GT point, fraction), ``per_landmark_accuracy_mean``,
        ``border_fraction`` and the figures of :func:`part_coverage`
        (``part_accuracy``, ``worst_part``, ``worst_part_accuracy``,
        ``parts_found``, ``all_parts_found``, ``spread``).
    """
    norm = normaliser(test['gt'], norm_indices)
    res = forward_backward_nme(
        train['pred'], train['gt'], test['pred'], test['gt'], norm,
        pred_train_valid=train['valid'], pred_test_valid=test['valid'])
    names = names or [f'point_{i}' for i in range(test['gt'].shape[1])]
    cov = part_coverage(test['pred'], test['gt'], norm, names,
                        thr=PART_HIT_THR, pred_valid=test['valid'],
                        found_at=PART_FOUND_AT)
    acc = list(cov['part_accuracy'].values())
    return dict(
        forward=float(res['forward']),
        backward=float(res['backward']),
        per_landmark_accuracy=acc,
        per_landmark_accuracy_mean=float(np.mean(acc)),
        border_fraction=border_fraction(test['pred'], test['valid'],
                                        test['crop'], band),
        **cov)


def pseudo_label_rounds(folder: str, train: dict,
                        norm_indices: Normaliser = (0, 1),
                        names: Optional[Sequence[str]] = None
                        ) -> List[Dict[str, object]]:
    """How good the training pseudo-labels of every clustering round were.

    Each round saved by :class:`ClusteringRounds` (``round_XXX_iter_N.npz``:
    keypoints in input pixels, bank row = training sample index) is mapped
    to image pixels with the crops of ``train`` (the training split of a
    ``landmarks.json``, in dataset order) and scored against the ground
    truth like a method: forward / backward NME, 2-fold cross-validated
    over the training images (the first half fits the regressors and the
    second is scored, then the other way round), and the part coverage
    (:func:`part_coverage`, no regression). Whether self-training improves
    its own targets round after round, and whether they cover every part,
    shows here, which the clustering log cannot tell without ground truth.

    Args:
        folder (str): The run's ``pseudo_labels`` folder.
        train (dict): :func:`split_arrays` of the training split.
        norm_indices (tuple | str): The normaliser (:data:`Normaliser`).
        names (Sequence[str], optional): The GT part names.

    Returns:
        list[dict]: Per round ``round``, ``iteration``, ``stage``,
        ``valid`` (share of landmark slots with a keypoint), ``forward``
        and ``backward`` (percent), ``part_accuracy``, ``worst_part``,
        ``worst_part_accuracy`` and ``spread``.

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
                normaliser(gt_ev, norm_indices),
                pred_train_valid=valid[fit], pred_test_valid=valid[ev])
            fwd.append(float(res['forward']))
            bwd.append(float(res['backward']))
            weights.append(len(gt_ev))
        meta = {}
        side = path[:-len('.npz')] + '.json'
        if osp.isfile(side):
            with open(side) as f:
                meta = json.load(f)
        cov = part_coverage(
            img, train['gt'], normaliser(train['gt'], norm_indices),
            names or [f'point_{i}' for i in range(train['gt'].shape[1])],
            thr=PART_HIT_THR, pred_valid=valid, found_at=PART_FOUND_AT)
        out.append(dict(
            round=int(data['round']), iteration=int(data['iteration']),
            stage=meta.get('stage'), valid=float(valid.mean()),
            forward=float(np.average(fwd, weights=weights)),
            backward=float(np.average(bwd, weights=weights)),
            part_accuracy=cov['part_accuracy'],
            worst_part=cov['worst_part'],
            worst_part_accuracy=cov['worst_part_accuracy'],
            spread=cov['spread']))
    return out


def rounds_table(rounds: Sequence[Dict[str, object]]) -> str:
    """Markdown table of :func:`pseudo_label_rounds`."""
    lines = ['| round | iteration | stage | landmark slots filled | '
             'forward NME % | backward NME % | worst part | spread |',
             '| --- ' * 8 + '|']
    for r in rounds:
        worst = (f'{r["worst_part"]} {100 * r["worst_part_accuracy"]:.0f} %'
                 if r.get('worst_part') else 'n/a')
        lines.append(f'| {r["round"]} | {r["iteration"]} | {r["stage"]} | '
                     f'{100 * r["valid"]:.0f} % | {r["forward"]:.1f} | '
                     f'{r["backward"]:.1f} | {worst} | '
                     f'{r.get("spread", float("nan")):.2f} |')
    return '\n'.join(lines) + '\n'


def mean_shape_baseline(train: dict, test: dict,
                        norm_indices: Normaliser = (0, 1)) -> float:
    """Forward NME (%) of predicting the mean training shape on every crop.

    The GT of the training images (only) is expressed relative to each
    crop box (0..1), averaged, and put back into every test crop.
    """
    def rel(gt, crop):
        wh = (crop[:, 2:4] - crop[:, 0:2])[:, None]
        return (gt - crop[:, None, 0:2]) / wh

    mean = rel(train['gt'], train['crop']).mean(0)
    wh = (test['crop'][:, 2:4] - test['crop'][:, 0:2])[:, None]
    pred = test['crop'][:, None, 0:2] + mean[None] * wh
    norm = normaliser(test['gt'], norm_indices)
    err = np.linalg.norm(pred - test['gt'], axis=-1).mean(1) / norm
    return float(err.mean() * 100)


def random_points_baseline(train: dict, test: dict, k: int, band: np.ndarray,
                           seed: int = 0,
                           norm_indices: Normaliser = (0, 1),
                           names: Optional[Sequence[str]] = None) -> dict:
    """Scores (:func:`score`) of K uniform random points in every crop."""
    rng = np.random.default_rng(seed)

    def draw(split):
        c = split['crop']
        u = rng.uniform(size=(len(c), k, 2))
        return c[:, None, 0:2] + u * (c[:, None, 2:4] - c[:, None, 0:2])

    tr = dict(train, pred=draw(train), valid=np.ones((len(train['gt']), k),
                                                     bool))
    te = dict(test, pred=draw(test), valid=np.ones((len(test['gt']), k),
                                                   bool))
    return score(tr, te, band, norm_indices, names)


def markdown_table(results: Dict[str, dict], landmark_names: Sequence[str]
                   ) -> str:
    """The learnability table (one row per method or baseline): NME, the
    accuracy of every part, the worst part, the spread and the border
    share."""
    head = ('| method | forward NME % | backward NME % | ' +
            ' | '.join(f'{n} acc.' for n in landmark_names) +
            ' | worst part | spread | landmarks near crop border |')
    sep = '|' + ' --- |' * (6 + len(landmark_names))
    lines = [head, sep]

    def f(v, pct=False):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return 'n/a'
        return f'{100 * v:.1f} %' if pct else f'{v:.2f}'

    for name, r in results.items():
        accs = r.get('per_landmark_accuracy') or [None] * len(landmark_names)
        worst = (f'{r["worst_part"]} ({f(r["worst_part_accuracy"], True)})'
                 if r.get('worst_part') else 'n/a')
        lines.append(
            f'| {name} | {f(r.get("forward"))} | {f(r.get("backward"))} | ' +
            ' | '.join(f(a, True) for a in accs) +
            f' | {worst} | {f(r.get("spread"))} | '
            f'{f(r.get("border_fraction"), True)} |')
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
            border_limit: float = 0.05, max_ratio: float = 1 / 3,
            gt_border: float = 0.0) -> Optional[str]:
    """One line saying whether ``method`` discovers landmarks.

    It does when its forward NME is at most ``max_ratio`` of the mean
    shape's and below the random points', at most ``border_limit`` more of
    its landmarks sit at the crop border than of the ground-truth points
    (``gt_border``: parts such as ear tips can lie there), **and** every
    ground-truth part is found (accuracy at least :data:`PART_FOUND_AT`).
    """
    r = results.get(method)
    base = results.get('mean shape (baseline)')
    if not r or not base:
        return None
    rand = results.get('random points (baseline)') or {}
    ratio = r['forward'] / base['forward']
    border = r.get('border_fraction')
    border = 1.0 if border is None or np.isnan(border) else border
    beats = ratio <= max_ratio and r['forward'] < rand.get(
        'forward', float('inf'))
    parts = r.get('all_parts_found', False)
    border_limit = border_limit + gt_border
    ok = beats and parts and border < border_limit
    why = []
    if not beats:
        why.append('does not beat the baselines')
    if not parts:
        why.append(f'finds {r.get("parts_found", 0)} of '
                   f'{r.get("num_parts", "?")} parts')
    if border >= border_limit:
        why.append('its landmarks sit at the crop border')
    worst = r.get('worst_part')
    return (f'{method}: forward NME {r["forward"]:.2f} % = {ratio:.2f} x the '
            f'mean-shape baseline; worst part {worst} '
            f'{100 * r.get("worst_part_accuracy", 0):.1f} % (found at '
            f'>= {100 * PART_FOUND_AT:.0f} %), spread '
            f'{r.get("spread", float("nan")):.2f}; {100 * border:.1f} % of '
            'landmarks near the crop border -> ' +
            ('discovers landmarks' if ok else 'NOT discovered: ' +
             ', '.join(why)))
