# Copyright (c) mmuld contributors. All rights reserved.
"""Forward / backward NME metric for unsupervised landmark discovery."""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from mmuld.registry import METRICS
from ..functional import (bbox_size, ced_auc, ced_curve, cluster_quality,
                          cumulative_landmark_curve, forward_backward_nme,
                          interocular_distance, per_landmark_accuracy,
                          yaw_breakdown)


def _to_numpy(x) -> Optional[np.ndarray]:
    if x is None:
        return None
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _first_instance(x: np.ndarray, last_dims: int) -> np.ndarray:
    """Take instance 0 of a (1, ...) array, leave un-batched arrays."""
    return x[0] if x.ndim == last_dims + 1 else x


@METRICS.register_module()
class RegressionNMEMetric(BaseMetric):
    """Forward and backward NME of discovered landmarks (Mallis et al.).

    Every data sample must carry ``uld_split`` in its metainfo: ``'train'``
    samples fit the linear regressors, ``'test'`` samples (the default when
    the key is absent) are evaluated. Read per sample (model output after
    ``model.predict``, converted to dicts by the evaluator):

    * ``pred_instances.keypoints`` (1, K, 2) in original image coordinates,
    * ``pred_instances.keypoints_visible`` (1, K), 0 = no landmark,
    * ``gt_instances.keypoints`` (1, G, 2),
    * optional ``yaw`` (metainfo), ``pred_instances.descriptors`` (1, K, D)
      and ``pred_instances.cluster_labels`` (1, K) for cluster quality
      (labels default to the landmark index).

    Args:
        norm_mode (str): ``'interocular'`` (GT points ``norm_indices``),
            ``'bbox'`` (``sqrt(w*h)`` of the GT landmark box, LS3D protocol)
            or ``'fixed'`` (``norm_value``).
        norm_indices (tuple | str): Pair of indices (an entry may be a list
            whose mean is used) or a preset of
            :data:`mmuld.evaluation.functional.INTEROCULAR_PRESETS`.
            Default (0, 1): eye centres of the MAFL 5-point set.
        norm_value (float): Normaliser for ``'fixed'`` mode.
        forward_alpha (float): Relative ridge penalty, discovered -> GT.
        backward_alpha (float): Relative ridge penalty, GT -> discovered.
        n_repeats (int): Random training subsets averaged over.
        n_fit (int, optional): Training subset size; None = all.
        seed (int): Subset sampling seed.
        accuracy_thr (float): Threshold (x norm) of the per-landmark
            accuracy after Hungarian matching.
        ced_max_threshold (float): Largest CED threshold in NME %.
        ced_bins (int): Number of CED thresholds.
        yaw_bins (Sequence[float]): Edges of the yaw breakdown.
        out_dir (str, optional): Where to write ``{prefix}_results.json``
            and CED curves (PNG / CSV / JSON). None = the runner log dir when
            reachable through the current :class:`MMLogger`, else nothing.
        save_outputs (bool): Write the files at all.
        collect_device (str): See :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): Metric name prefix, default ``'uld'``.
    """
    default_prefix: Optional[str] = 'uld'

    def __init__(self,
                 norm_mode: str = 'interocular',
                 norm_indices: Union[Tuple, str] = (0, 1),
                 norm_value: float = 1.0,
                 forward_alpha: float = 1e-3,
                 backward_alpha: float = 1e-1,
                 n_repeats: int = 1,
                 n_fit: Optional[int] = None,
                 seed: int = 0,
                 accuracy_thr: float = 0.2,
                 ced_max_threshold: float = 10.0,
                 ced_bins: int = 101,
                 yaw_bins: Sequence[float] = (-90, -60, -30, 30, 60, 90),
                 out_dir: Optional[str] = None,
                 save_outputs: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if norm_mode not in ('interocular', 'bbox', 'fixed'):
            raise ValueError("norm_mode must be 'interocular', 'bbox' or "
                             f"'fixed', got {norm_mode!r}.")
        if norm_mode == 'fixed' and norm_value <= 0:
            raise ValueError('norm_value must be positive.')
        if not isinstance(norm_indices, str) and len(norm_indices) != 2:
            raise ValueError('norm_indices must be a pair or a preset name, '
                             f'got {norm_indices!r}.')
        self.norm_mode = norm_mode
        self.norm_indices = norm_indices
        self.norm_value = float(norm_value)
        self.forward_alpha = forward_alpha
        self.backward_alpha = backward_alpha
        self.n_repeats = n_repeats
        self.n_fit = n_fit
        self.seed = seed
        self.accuracy_thr = accuracy_thr
        self.ced_max_threshold = ced_max_threshold
        self.ced_bins = ced_bins
        self.yaw_bins = tuple(yaw_bins)
        self.out_dir = out_dir
        self.save_outputs = save_outputs

    def process(self, data_batch: Sequence[dict],
                data_samples: Sequence[dict]) -> None:
        """Collect predictions and GT of one batch.

        Args:
            data_batch (Sequence[dict]): Batch from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs as dicts.
        """
        for ds in data_samples:
            if hasattr(ds, 'to_dict'):
                ds = ds.to_dict()
            pred = ds.get('pred_instances')
            gt = ds.get('gt_instances')
            if pred is None or 'keypoints' not in pred:
                raise ValueError('RegressionNMEMetric needs '
                                 'pred_instances.keypoints in each sample.')
            if gt is None or 'keypoints' not in gt:
                raise ValueError('RegressionNMEMetric needs '
                                 'gt_instances.keypoints in each sample.')
            kpts = _first_instance(_to_numpy(pred['keypoints']), 2)
            vis = _to_numpy(pred.get('keypoints_visible'))
            vis = (np.ones(kpts.shape[0], dtype=bool)
                   if vis is None else vis.reshape(-1).astype(bool))
            gt_kpts = _first_instance(_to_numpy(gt['keypoints']), 2)
            split = ds.get('uld_split', 'test')
            if split not in ('train', 'test'):
                raise ValueError(
                    f"uld_split must be 'train' or 'test', got {split!r}.")
            result = dict(
                keypoints=kpts.astype(np.float64),
                valid=vis,
                gt=gt_kpts.astype(np.float64),
                split=split,
                yaw=float(ds['yaw']) if ds.get('yaw') is not None else None,
                img_path=ds.get('img_path'),
                img_id=ds.get('img_id'))
            desc = _to_numpy(pred.get('descriptors'))
            if desc is not None:
                result['descriptors'] = _first_instance(desc, 2).astype(
                    np.float32)
                labels = _to_numpy(pred.get('cluster_labels'))
                result['cluster_labels'] = (
                    np.arange(kpts.shape[0]) if labels is None else
                    labels.reshape(-1).astype(np.int64))
            self.results.append(result)

    def _norm(self, gt: np.ndarray) -> np.ndarray:
        if self.norm_mode == 'interocular':
            if isinstance(self.norm_indices, str):
                return interocular_distance(gt, self.norm_indices)
            return interocular_distance(gt, *self.norm_indices)
        if self.norm_mode == 'bbox':
            return bbox_size(gt)
        return np.full(gt.shape[0], self.norm_value)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Fit the regressors on 'train' samples, evaluate 'test' samples.

        Args:
            results (list[dict]): Collected per-sample results.

        Returns:
            dict[str, float]: ``forward_nme``, ``backward_nme`` (percent),
            ``forward_ced_auc``, ``backward_ced_auc``, ``per_landmark_acc``
            and, with descriptors, ``silhouette`` / ``calinski_harabasz``.
        """
        logger = MMLogger.get_current_instance()
        train = [r for r in results if r['split'] == 'train']
        test = [r for r in results if r['split'] == 'test']
        if not train:
            raise ValueError(
                'RegressionNMEMetric got no sample with uld_split="train": '
                'the forward/backward regressors need training samples '
                '(set uld_split in the dataset).')
        if not test:
            raise ValueError('RegressionNMEMetric got no sample with '
                             'uld_split="test".')
        ks = {r['keypoints'].shape for r in results}
        gs = {r['gt'].shape for r in results}
        if len(ks) != 1 or len(gs) != 1:
            raise ValueError('All samples need the same number of discovered '
                             f'and GT landmarks, got {ks} and {gs}.')

        def stack(rs, key):
            return np.stack([r[key] for r in rs])

        gt_test = stack(test, 'gt')
        norm = self._norm(gt_test)
        if np.any(~np.isfinite(norm)) or np.any(norm <= 0):
            bad = [test[i]['img_path'] for i in np.where(~(norm > 0))[0]]
            raise ValueError(f'Non-positive normaliser for test images {bad}.')
        res = forward_backward_nme(
            stack(train, 'keypoints'),
            stack(train, 'gt'),
            stack(test, 'keypoints'),
            gt_test,
            norm,
            pred_train_valid=stack(train, 'valid'),
            pred_test_valid=stack(test, 'valid'),
            forward_alpha=self.forward_alpha,
            backward_alpha=self.backward_alpha,
            n_repeats=self.n_repeats,
            n_fit=self.n_fit,
            seed=self.seed)
        acc = per_landmark_accuracy(
            stack(test, 'keypoints'),
            gt_test,
            norm,
            thr=self.accuracy_thr,
            pred_valid=stack(test, 'valid'))

        curves = {}
        metrics = dict(
            forward_nme=res['forward'],
            backward_nme=res['backward'],
            per_landmark_acc=acc['mean'])
        for name in ('forward', 'backward'):
            thr, frac = ced_curve(res[f'{name}_per_image'],
                                  self.ced_max_threshold, self.ced_bins)
            metrics[f'{name}_ced_auc'] = ced_auc(thr, frac)
            curves[name] = dict(
                thresholds=thr.tolist(),
                fractions=frac.tolist(),
                landmark_cumulative=cumulative_landmark_curve(
                    res[f'{name}_per_landmark']).tolist())

        cq = None
        with_desc = [r for r in results if 'descriptors' in r]
        if with_desc:
            desc = np.concatenate(
                [r['descriptors'][r['valid']] for r in with_desc])
            labels = np.concatenate(
                [r['cluster_labels'][r['valid']] for r in with_desc])
            cq = cluster_quality(desc, labels, seed=self.seed)
            metrics['silhouette'] = cq['silhouette']
            metrics['calinski_harabasz'] = cq['calinski_harabasz']

        yaws = np.array([np.nan if r['yaw'] is None else r['yaw']
                         for r in test])
        yaw_stats = None
        if np.isfinite(yaws).any():
            yaw_stats = dict(
                forward=yaw_breakdown(res['forward_per_image'], yaws,
                                      self.yaw_bins),
                backward=yaw_breakdown(res['backward_per_image'], yaws,
                                       self.yaw_bins))

        out_dir = self._resolve_out_dir(logger)
        if out_dir is not None:
            report = dict(
                metrics=metrics,
                settings=dict(
                    norm_mode=self.norm_mode,
                    norm_indices=self.norm_indices,
                    forward_alpha=self.forward_alpha,
                    backward_alpha=self.backward_alpha,
                    n_repeats=self.n_repeats,
                    n_fit=res['n_fit'],
                    accuracy_thr=self.accuracy_thr,
                    num_train=len(train),
                    num_test=len(test)),
                forward_per_landmark=res['forward_per_landmark'].tolist(),
                backward_per_landmark=res['backward_per_landmark'].tolist(),
                gt_landmark_accuracy=acc['gt_accuracy'].tolist(),
                discovered_landmark_accuracy=acc['pred_accuracy'].tolist(),
                hungarian_assignment=acc['assignment'].tolist(),
                per_image=[
                    dict(
                        img_path=r['img_path'],
                        img_id=r['img_id'],
                        yaw=r['yaw'],
                        forward_nme=float(f),
                        backward_nme=float(b))
                    for r, f, b in zip(test, res['forward_per_image'],
                                       res['backward_per_image'])
                ],
                ced=curves,
                yaw_breakdown=yaw_stats,
                cluster_quality=cq)
            self._write(out_dir, report, curves)
            logger.info(f'RegressionNMEMetric outputs written to {out_dir}')
        return metrics

    def _resolve_out_dir(self, logger: MMLogger) -> Optional[str]:
        if not self.save_outputs:
            return None
        if self.out_dir is not None:
            return self.out_dir
        log_file = getattr(logger, 'log_file', None)
        if log_file:
            return osp.join(osp.dirname(log_file), 'uld_eval')
        return None

    def _write(self, out_dir: str, report: dict, curves: dict) -> None:
        os.makedirs(out_dir, exist_ok=True)
        pre = self.prefix or 'uld'

        def default(o):
            if isinstance(o, np.generic):
                return o.item()
            if isinstance(o, np.ndarray):
                return o.tolist()
            return str(o)

        with open(osp.join(out_dir, f'{pre}_results.json'), 'w') as f:
            json.dump(report, f, indent=2, default=default)
        with open(osp.join(out_dir, f'{pre}_ced.json'), 'w') as f:
            json.dump(curves, f, indent=2)
        with open(osp.join(out_dir, f'{pre}_ced.csv'), 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['threshold_nme_percent', 'forward_fraction',
                             'backward_fraction'])
            for row in zip(curves['forward']['thresholds'],
                           curves['forward']['fractions'],
                           curves['backward']['fractions']):
                writer.writerow(row)
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for name in ('forward', 'backward'):
            c = curves[name]
            axes[0].plot(c['thresholds'], c['fractions'], label=name)
            lc = c['landmark_cumulative']
            axes[1].plot(np.arange(1, len(lc) + 1), lc, label=name)
        axes[0].set_xlabel('NME (%)')
        axes[0].set_ylabel('fraction of test images')
        axes[0].set_title('CED')
        axes[1].set_xlabel('# landmarks (sorted by error)')
        axes[1].set_ylabel('cumulative mean NME (%)')
        axes[1].set_title('Per-landmark cumulative NME')
        for ax in axes:
            ax.grid(True)
            ax.legend()
        fig.tight_layout()
        fig.savefig(osp.join(out_dir, f'{pre}_ced.png'), dpi=100)
        plt.close(fig)
