# Copyright (c) mmuld contributors. All rights reserved.
"""Equivariance of discovered landmarks under known rotations (no labels).

Every test image is passed through the model once as it is and once per
known transform ``M`` (rotation about the centre of the input crop,
optionally a horizontal flip). ``M`` is applied to the **preprocessed input
tensor** with :func:`~mmuld.models.utils.affine.warp_images`, so the crop,
its ``input_center`` / ``input_scale`` and the normalisation stay the same.
All geometry is done in **input pixels** (the model's own frame): a
landmark ``q`` found on the transformed input is mapped back with
``M^-1`` and compared with the landmark ``p`` found on the original input,
``||M^-1 q - p||``, divided by the size of the input crop
(``sqrt(W * H)``, or of the RoI, see ``norm``) and given in percent.
"""
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mmuld.models.utils.affine import (affine_matrices, invert_affine,
                                       transform_points, warp_images)
from mmuld.models.utils.border import in_frame
from .functional.equivariance import equivariance_error


def transform_matrix(angle: float,
                     size: Sequence[int],
                     flip: bool = False) -> np.ndarray:
    """Pixel -> pixel map of a rotation about the input centre.

    Same convention as ``cv2.getRotationMatrix2D`` (positive angles turn the
    image counter-clockwise on screen; the y axis points down), about the
    pixel centre ``((W - 1) / 2, (H - 1) / 2)``. With ``flip`` the image is
    first flipped horizontally (``x -> W - 1 - x``), then rotated.

    Args:
        angle (float): Rotation in degrees.
        size (Sequence[int]): ``(H, W)`` of the input.
        flip (bool): Flip horizontally before the rotation.

    Returns:
        np.ndarray: ``(2, 3)`` float64 matrix.
    """
    # cv2's positive angle is affine_matrices' negative one
    return affine_matrices(
        torch.tensor([-float(angle)]), torch.tensor([bool(flip)]),
        size)[0].numpy()


def predict_input_landmarks(model: torch.nn.Module,
                            inputs: Tensor,
                            data_samples: list,
                            matrix: Optional[Tensor] = None,
                            zs_points: Optional[Tensor] = None
                            ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """K landmarks per image in input pixels, before any mapping to the
    image.

    * A model with ``input_landmarks`` (both estimators): its landmarks in
      input pixels. A model that decodes from random pixels
      (``samples_points``, ZeroShot) gets, on a transformed input, the
      *same* pixels moved by ``matrix``, so that the random sampling does
      not count as an equivariance error (moved pixels outside the input
      are dropped).
    * Any other model: ``model.predict`` (image coordinates) mapped back to
      input pixels with the samples' ``input_center`` / ``input_scale`` /
      ``input_size`` (mmpose's unrotated top-down crop).

    Args:
        model (nn.Module): The model (eval mode).
        inputs (Tensor): ``(B, 3, H, W)`` preprocessed (possibly
            transformed) inputs.
        data_samples (list[PoseDataSample]): The batch's samples.
        matrix (Tensor, optional): ``(B, 2, 3)`` transform applied to
            ``inputs`` (ZeroShot only; None: original input).
        zs_points (Tensor, optional): ZeroShot pixels sampled on the
            original input (returned by the call with ``matrix=None``).

    Returns:
        tuple: ``keypoints`` (B, K, 2) float, ``visible`` (B, K) bool and the
        ZeroShot sample points (None for other models).
    """
    from mmuld.models.pose_estimators.zeroshot_estimator import \
        image_to_input_coords
    if hasattr(model, 'input_landmarks'):
        points = None
        if getattr(model, 'samples_points', False) and matrix is not None:
            if zs_points is None:
                raise ValueError('ZeroShot on a transformed input needs the '
                                 'points sampled on the original input')
            points = transform_points(zs_points, matrix.to(zs_points))
        res = model.input_landmarks(inputs, data_samples, points=points)
        sampled = zs_points if points is not None else res.get('points')
        return res['keypoints'].float(), res['visible'] > 0, sampled
    preds = model.predict(inputs, data_samples)
    kpts, vis = [], []
    for ds in preds:
        meta = ds.metainfo
        missing = [
            k for k in ('input_center', 'input_scale', 'input_size')
            if k not in meta
        ]
        if missing:
            raise ValueError(f'sample metainfo lacks {missing}: needed to map '
                             'predictions back to input pixels')
        inst = ds.pred_instances
        kp = torch.as_tensor(
            np.asarray(inst.keypoints)[0], dtype=torch.float32)
        kpts.append(
            image_to_input_coords(kp, meta['input_center'],
                                  meta['input_scale'], meta['input_size']))
        v = np.asarray(inst.keypoints_visible)[0] if 'keypoints_visible' in \
            inst else np.ones(kp.shape[0])
        vis.append(torch.as_tensor(np.asarray(v) > 0))
    return torch.stack(kpts).to(inputs.device), torch.stack(vis).to(
        inputs.device), None


def _norms(data_samples: list, hw: Tuple[int, int], mode: str) -> np.ndarray:
    """Per-image normaliser in input pixels."""
    h, w = hw
    if mode == 'input':
        return np.full(len(data_samples), math.sqrt(w * h))
    if mode != 'bbox':
        raise ValueError(f"norm must be 'input' or 'bbox', got {mode!r}")
    from mmuld.models.pose_estimators.zeroshot_estimator import roi_to_input
    out = []
    for ds in data_samples:
        gt = ds.get('gt_instances', None)
        boxes = None if gt is None else gt.get('bboxes', None)
        if boxes is None or len(boxes) == 0:
            raise ValueError(
                "norm='bbox' needs gt_instances.bboxes in every "
                f'sample ({ds.metainfo.get("img_path")} has none)')
        meta = ds.metainfo
        b = roi_to_input(
            np.asarray(boxes)[0], meta['input_center'], meta['input_scale'],
            meta['input_size']).numpy()
        out.append(math.sqrt(max(b[2] - b[0], 1e-6) * max(b[3] - b[1], 1e-6)))
    return np.asarray(out)


def _transforms(angles: Iterable[float],
                flip: bool) -> List[Tuple[str, float, bool]]:
    out = []
    for a in angles:
        a = float(a)
        out.append((f'{a:g}', a, False))
    if flip:
        out.append(('flip', 0.0, True))
    if not out:
        raise ValueError('no transform to evaluate: give angles or flip=True')
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f'duplicate angles in {list(angles)}')
    return out


@torch.no_grad()
def evaluate_equivariance(model: torch.nn.Module,
                          dataloader: Iterable,
                          angles: Sequence[float] = (-30, -15, 15, 30),
                          flip: bool = False,
                          device: str = 'cpu',
                          split: Optional[str] = None,
                          norm: str = 'input',
                          flip_indices: Optional[Sequence[int]] = None,
                          max_images: Optional[int] = None) -> Dict:
    """Equivariance error of a landmark model under known rotations.

    See the module docstring for the protocol. A pair (image, landmark) of
    a transform counts when the landmark is visible on the original and on
    the transformed input and the transform keeps the original landmark
    inside the input (else it cannot be seen); the error of a transform is
    the mean over its pairs.

    With ``flip`` a horizontal flip (angle 0) is added; a flip swaps left
    and right landmarks, so landmark ``i`` is compared with landmark
    ``flip_indices[i]`` of the flipped input. ``flip_indices`` default to
    ``model.dataset_meta['flip_indices']`` when the model has them, else
    they are estimated from the same images with
    :func:`mmuld.apis.flip_pairs.match_flip_pairs` (optimistic).

    Args:
        model (nn.Module): :class:`ULDEstimator`, :class:`ZeroShotEstimator`
            (fitted) or any top-down model with ``data_preprocessor`` and
            ``predict``.
        dataloader (Iterable): Yields mmengine data batches (dicts with
            ``inputs`` and ``data_samples``), e.g. a test dataloader.
        angles (Sequence[float]): Rotations in degrees
            (``cv2.getRotationMatrix2D`` convention). An angle of 0 is the
            identity warp (a sanity check: error 0).
        flip (bool): Also evaluate a horizontal flip.
        device (str): Device of the model and inputs.
        split (str, optional): Only samples whose metainfo ``uld_split``
            equals this; None: all samples.
        norm (str): ``'input'``: ``sqrt(W * H)`` of the input crop
            (default); ``'bbox'``: ``sqrt(w * h)`` of the sample's
            ``gt_instances.bboxes[0]`` mapped into the input.
        flip_indices (Sequence[int], optional): Flip partner of every
            discovered landmark (only with ``flip``).
        max_images (int, optional): Stop after this many images.

    Returns:
        dict: ``num_images``, ``num_landmarks``, ``input_size`` (H, W),
        ``norm``, ``split``, ``visible_original`` (fraction of landmarks
        visible on the original inputs), ``per_angle`` (name -> dict with
        ``angle``, ``flip``, ``error`` (%, mean over pairs), ``median``,
        ``per_landmark`` (K,), ``visible_both`` (fraction of the N x K
        landmarks visible on both inputs), ``out_of_frame`` (fraction moved
        outside the input, excluded), ``num_pairs``), ``overall``
        (``error``, ``median``, ``visible_both``, ``num_pairs`` pooled over
        the rotations; the identity (angle 0) and the flip are left out)
        and, with ``flip``,
        ``flip_indices`` / ``flip_indices_source``.
    """
    transforms = _transforms(angles, flip)
    model = model.to(device)
    model.eval()
    orig_kp, orig_vis, norms = [], [], []
    tr_kp = {n: [] for n, _, _ in transforms}
    tr_vis = {n: [] for n, _, _ in transforms}
    hw = None
    n_done = 0
    for data in dataloader:
        samples = data['data_samples']
        keep = [
            i for i, ds in enumerate(samples)
            if split is None or ds.metainfo.get('uld_split') == split
        ]
        if max_images is not None:
            keep = keep[:max(0, max_images - n_done)]
        if not keep:
            if max_images is not None and n_done >= max_images:
                break
            continue
        data = dict(
            data,
            inputs=[data['inputs'][i] for i in keep],
            data_samples=[samples[i] for i in keep])
        data = model.data_preprocessor(data, False)
        inputs = data['inputs'].to(device).float()
        samples = data['data_samples']
        cur_hw = tuple(inputs.shape[-2:])
        if hw is not None and cur_hw != hw:
            raise ValueError(f'inputs of different sizes {hw} and {cur_hw}')
        hw = cur_hw
        kp, vis, zs_pts = predict_input_landmarks(model, inputs, samples)
        orig_kp.append(kp.cpu().numpy())
        orig_vis.append(vis.cpu().numpy())
        norms.append(_norms(samples, hw, norm))
        b = inputs.shape[0]
        for name, angle, flp in transforms:
            m = torch.as_tensor(
                transform_matrix(angle, hw, flp),
                dtype=torch.float32,
                device=inputs.device).expand(b, 2, 3)
            warped = warp_images(inputs, m)
            q, qv, _ = predict_input_landmarks(model, warped, samples, m,
                                               zs_pts)
            tr_kp[name].append(q.cpu().numpy())
            tr_vis[name].append(qv.cpu().numpy())
        n_done += b
        if max_images is not None and n_done >= max_images:
            break
    if not orig_kp:
        raise ValueError('no image to evaluate' + (
            f' (no sample with uld_split == {split!r})' if split else ''))
    p = np.concatenate(orig_kp).astype(np.float64)
    pv = np.concatenate(orig_vis).astype(bool)
    nrm = np.concatenate(norms)
    n, k = pv.shape
    h, w = hw
    result = dict(
        num_images=int(n),
        num_landmarks=int(k),
        input_size=[int(h), int(w)],
        norm=norm,
        split=split,
        visible_original=float(pv.mean()),
        per_angle={})

    if flip:
        result.update(
            _resolve_flip_indices(model, flip_indices, p, pv, tr_kp, tr_vis,
                                  hw, nrm, k))
    pooled_sum, pooled_n, pooled_vis, all_err = 0.0, 0, [], []
    for name, angle, flp in transforms:
        q = np.concatenate(tr_kp[name]).astype(np.float64)
        qv = np.concatenate(tr_vis[name]).astype(bool)
        if flp:
            perm = np.asarray(result['flip_indices'])
            q, qv = q[:, perm], qv[:, perm]
        m = transform_matrix(angle, hw, flp)
        m_inv = invert_affine(torch.as_tensor(m)[None])[0].numpy()
        mapped = p @ m[:, :2].T + m[:, 2]
        inside = in_frame(mapped, hw)
        both = pv & qv
        valid = both & inside
        num = int(valid.sum())
        entry = dict(
            angle=angle,
            flip=flp,
            visible_both=float(both.mean()),
            out_of_frame=float((both & ~inside).mean()),
            num_pairs=num)
        if num:
            err = equivariance_error(q, p, m_inv, norm=nrm, valid=valid)
            per_pair = _pair_errors(q, p, m_inv, nrm)[valid]
            entry.update(
                error=float(err['mean']),
                median=float(np.median(per_pair)),
                per_landmark=[float(x) for x in err['per_landmark']])
        else:
            entry.update(
                error=float('nan'),
                median=float('nan'),
                per_landmark=[float('nan')] * k)
        result['per_angle'][name] = entry
        if not flp and angle % 360 != 0:
            pooled_sum += float(per_pair.sum()) if num else 0.0
            pooled_n += num
            pooled_vis.append(both.mean())
            if num:
                all_err.append(per_pair)
    result['overall'] = dict(
        error=pooled_sum / pooled_n if pooled_n else float('nan'),
        median=float(np.median(np.concatenate(all_err)))
        if all_err else float('nan'),
        visible_both=float(np.mean(pooled_vis))
        if pooled_vis else float('nan'),
        num_pairs=int(pooled_n))
    return result


def _pair_errors(q: np.ndarray, p: np.ndarray, m_inv: np.ndarray,
                 nrm: np.ndarray) -> np.ndarray:
    """(N, K) errors ``||M^-1 q - p|| / norm * 100``."""
    back = q @ m_inv[:, :2].T + m_inv[:, 2]
    return np.linalg.norm(back - p, axis=-1) / nrm[:, None] * 100


def _resolve_flip_indices(model, flip_indices, p, pv, tr_kp, tr_vis, hw, nrm,
                          k) -> dict:
    """Flip partners: given, from the model's dataset meta, or estimated."""
    if flip_indices is not None:
        src = 'given'
    else:
        meta = getattr(model, 'dataset_meta', None) or {}
        flip_indices = meta.get('flip_indices') if isinstance(meta,
                                                              dict) else None
        src = 'dataset_meta'
        if flip_indices is None or len(flip_indices) != k:
            from mmuld.apis.flip_pairs import (flip_distance_matrix,
                                               match_flip_pairs)
            q = np.concatenate(tr_kp['flip']).astype(np.float64)
            qv = np.concatenate(tr_vis['flip']).astype(bool)
            m_inv = np.linalg.inv(
                np.vstack([transform_matrix(0.0, hw, True), [0, 0, 1]]))[:2]
            back = q @ m_inv[:, :2].T + m_inv[:, 2]
            dist = flip_distance_matrix(p, pv, back, qv, nrm)['distance']
            flip_indices = match_flip_pairs(dist)
            src = 'estimated'
    flip_indices = [int(i) for i in flip_indices]
    if sorted(flip_indices) != list(range(k)):
        raise ValueError(f'flip_indices must be a permutation of range({k}), '
                         f'got {flip_indices}')
    return dict(flip_indices=flip_indices, flip_indices_source=src)


def format_equivariance_table(result: Dict) -> str:
    """A plain-text table of :func:`evaluate_equivariance` results.

    Args:
        result (dict): Output of :func:`evaluate_equivariance`.

    Returns:
        str: One row per transform plus the pooled rotations.
    """
    lines = [
        f"{'transform':>10} {'error %':>8} {'median %':>9} "
        f"{'vis both':>9} {'pairs':>6}"
    ]

    def row(name, e):
        lines.append(f"{name:>10} {e['error']:8.3f} {e['median']:9.3f} "
                     f"{e['visible_both']:9.3f} {e['num_pairs']:6d}")

    for name, e in result['per_angle'].items():
        row(name if e['flip'] else f'{name} deg', e)
    row('overall', result['overall'])
    lines.append(
        f"{result['num_images']} images, K={result['num_landmarks']}, "
        f"input {result['input_size'][1]}x{result['input_size'][0]}, "
        f"norm={result['norm']}, visible on original "
        f"{result['visible_original']:.3f}")
    return '\n'.join(lines)
