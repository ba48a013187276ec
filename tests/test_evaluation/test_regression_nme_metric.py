# Copyright (c) mmuld contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmuld.evaluation import RegressionNMEMetric
from mmuld.registry import METRICS
from mmuld.testing import oracle_ridge

ROOT = osp.join(osp.dirname(__file__), '..', '..', 'data', 'face_samples')


def _load_5pt():
    samples = []
    for split in ('train', 'test'):
        data = json.load(open(osp.join(ROOT, f'uld_5pt_{split}.json')))
        imgs = {im['id']: im for im in data['images']}
        for ann in data['annotations']:
            kp = np.array(ann['keypoints']).reshape(-1, 3)[:, :2]
            samples.append((imgs[ann['image_id']]['file_name'], kp,
                            ann['uld_split']))
    return samples


def _data_samples(samples, k=8, noise=0.0, seed=0, tensors=False,
                  with_desc=False, invalid=None):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, (k, 5))
    out = []
    for i, (name, gt, split) in enumerate(samples):
        # discovered points: fixed linear combinations of the GT points
        pred = a @ gt / np.abs(a).sum(1, keepdims=True)
        pred = pred + rng.normal(0, noise, pred.shape)
        vis = np.ones((1, k))
        if invalid is not None and i % 3 == 0:
            vis[0, invalid] = 0
        kp = pred[None]
        ds = dict(
            img_path=name,
            img_id=i,
            uld_split=split,
            gt_instances=dict(keypoints=gt[None].astype(np.float32)),
            pred_instances=dict(
                keypoints=torch.from_numpy(kp) if tensors else kp,
                keypoints_visible=vis))
        if with_desc:
            ds['pred_instances']['descriptors'] = (
                np.eye(k)[None] * 5 + rng.normal(0, 0.1, (1, k, k)))
        out.append(ds)
    return out


def _oracle(data_samples, fa, ba):
    """Forward / backward NME (%) of fully visible predictions, with the
    inter-ocular distance of GT points 0 and 1."""
    parts = {}
    for split in ('train', 'test'):
        sel = [d for d in data_samples if d['uld_split'] == split]
        pred = np.stack([np.asarray(d['pred_instances']['keypoints'])[0]
                         for d in sel]).astype(np.float64)
        gt = np.stack([d['gt_instances']['keypoints'][0]
                       for d in sel]).astype(np.float64)
        parts[split] = pred.reshape(len(sel), -1), gt.reshape(len(sel), -1)
    (p_tr, g_tr), (p_te, g_te) = parts['train'], parts['test']
    norm = np.linalg.norm(g_te[:, 0:2] - g_te[:, 2:4], axis=-1)[:, None]
    y_hat = oracle_ridge(p_tr, g_tr, p_te, fa)
    x_hat = oracle_ridge(g_tr, p_tr, g_te, ba)
    m = len(p_te)
    fwd = np.linalg.norm((y_hat - g_te).reshape(m, -1, 2), axis=-1) / norm
    bwd = np.linalg.norm((x_hat - p_te).reshape(m, -1, 2), axis=-1) / norm
    return fwd.mean() * 100, bwd.mean() * 100


def test_metric_default_alphas_match_oracle():
    samples = _load_5pt()
    ds = _data_samples(samples, noise=2.0, seed=3)
    metric = RegressionNMEMetric(save_outputs=False)
    metric.process([], ds)
    res = metric.evaluate(len(ds))
    fwd, bwd = _oracle(ds, 1e-3, 1e-1)
    assert res['uld/forward_nme'] == pytest.approx(fwd, rel=1e-5)
    assert res['uld/backward_nme'] == pytest.approx(bwd, rel=1e-5)


def test_metric_on_face_samples_writes_outputs(tmp_path):
    samples = _load_5pt()
    assert {s[2] for s in samples} == {'train', 'test'}
    metric = METRICS.build(
        dict(
            type='RegressionNMEMetric',
            out_dir=str(tmp_path),
            forward_alpha=1e-6,
            backward_alpha=1e-6))
    assert isinstance(metric, RegressionNMEMetric)
    metric.dataset_meta = {}
    ds = _data_samples(samples, noise=0.0, tensors=True, with_desc=True)
    metric.process([], ds[:5])
    metric.process([], ds[5:])
    res = metric.evaluate(len(ds))
    for key in ('forward_nme', 'backward_nme', 'forward_ced_auc',
                'backward_ced_auc', 'per_landmark_acc', 'silhouette',
                'calinski_harabasz'):
        assert f'uld/{key}' in res
    # discovered points are an exact linear function of the GT; with only
    # 8 training images (fewer than the 11 regression parameters) the
    # mapping is not fully identified: the values are those of a
    # closed-form ridge with the penalty relative to max(Xc^T Xc)
    fwd, bwd = _oracle(ds, 1e-6, 1e-6)
    assert res['uld/forward_nme'] == pytest.approx(fwd, rel=1e-5)
    assert res['uld/backward_nme'] == pytest.approx(bwd, rel=1e-5)
    assert res['uld/silhouette'] > 0.5
    rep = json.load(open(tmp_path / 'uld_results.json'))
    assert len(rep['per_image']) == 4
    assert len(rep['gt_landmark_accuracy']) == 5
    assert len(rep['discovered_landmark_accuracy']) == 8
    assert rep['settings']['num_train'] == 8
    assert (tmp_path / 'uld_ced.png').stat().st_size > 1000
    assert (tmp_path / 'uld_ced.csv').read_text().count('\n') == 102
    ced = json.load(open(tmp_path / 'uld_ced.json'))
    assert np.all(np.diff(ced['forward']['fractions']) >= 0)


def test_metric_noise_increases_error(tmp_path):
    samples = _load_5pt()
    errs = []
    for noise in (0.0, 20.0):
        metric = RegressionNMEMetric(save_outputs=False)
        metric.process([], _data_samples(samples, noise=noise, seed=1))
        errs.append(metric.evaluate(len(samples))['uld/backward_nme'])
    assert errs[1] > errs[0]


def test_metric_masked_landmarks(tmp_path):
    samples = _load_5pt()
    metric = RegressionNMEMetric(out_dir=str(tmp_path), prefix='m')
    metric.process([], _data_samples(samples, invalid=[1, 2]))
    res = metric.evaluate(len(samples))
    assert np.isfinite(res['m/forward_nme'])
    assert np.isfinite(res['m/backward_nme'])
    assert (tmp_path / 'm_results.json').exists()


def test_metric_errors():
    samples = _load_5pt()
    metric = RegressionNMEMetric(save_outputs=False)
    ds = _data_samples(samples)
    for d in ds:
        d['uld_split'] = 'test'
    metric.process([], ds)
    with pytest.raises(ValueError, match='uld_split="train"'):
        metric.evaluate(len(ds))
    # default split is 'test' when the key is absent
    metric = RegressionNMEMetric(save_outputs=False)
    for d in ds:
        d.pop('uld_split')
    metric.process([], ds)
    assert all(r['split'] == 'test' for r in metric.results)
    with pytest.raises(ValueError, match='norm_mode'):
        RegressionNMEMetric(norm_mode='foo')
    with pytest.raises(ValueError, match='uld_split'):
        RegressionNMEMetric().process([], [dict(ds[0], uld_split='val')])


def test_metric_bbox_and_fixed_norm():
    samples = _load_5pt()
    vals = {}
    for mode in ('bbox', 'fixed'):
        metric = RegressionNMEMetric(
            norm_mode=mode, norm_value=100.0, save_outputs=False)
        metric.process([], _data_samples(samples, noise=5.0))
        vals[mode] = metric.evaluate(len(samples))['uld/forward_nme']
    assert all(np.isfinite(v) and v > 0 for v in vals.values())
