# Copyright (c) mmuld contributors. All rights reserved.
"""Equivariance error under known rotations (evaluate_equivariance + CLI)."""
import importlib.util
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from mmpose.models.data_preprocessors import PoseDataPreprocessor
from mmpose.models.pose_estimators.topdown import TopdownPoseEstimator
from mmpose.structures import PoseDataSample

from mmuld.evaluation.equivariance_eval import (evaluate_equivariance,
                                                format_equivariance_table,
                                                transform_matrix)
from mmuld.models.utils.affine import transform_points, warp_images

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py')
CLI = osp.join(ROOT, 'tools', 'analysis', 'equivariance_error.py')
S = 64
CENTER = np.array([100.0, 80.0], dtype=np.float32)
SCALE = np.array([128.0, 128.0], dtype=np.float32)


def _load_cli():
    spec = importlib.util.spec_from_file_location('equivariance_error_cli',
                                                  CLI)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _StubModel(BaseModel):
    """Landmark j = brightest spot of channel j (intensity-weighted centroid
    above 0.5 in [-1, 1]); one extra landmark is never visible. With
    ``fixed`` every landmark is the same fixed input pixel instead."""

    def __init__(self, fixed=None):
        super().__init__(
            data_preprocessor=PoseDataPreprocessor(
                mean=[127.5] * 3, std=[127.5] * 3))
        self.test_cfg = {}
        self.fixed = fixed

    def forward(self, inputs, data_samples=None, mode='predict'):
        return self.predict(inputs, data_samples)

    def predict(self, inputs, data_samples):
        b, c, h, w = inputs.shape
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=torch.float32),
            torch.arange(w, dtype=torch.float32),
            indexing='ij')
        weight = (inputs[:, :2] - 0.5).clamp(min=0)  # (B, 2, H, W)
        tot = weight.sum((-1, -2))
        kp = torch.stack([(weight * xs).sum((-1, -2)) / tot, (weight * ys).sum(
            (-1, -2)) / tot], -1)
        if self.fixed is not None:
            kp = torch.tensor(self.fixed).expand(b, 2, 2).clone()
        kp = torch.cat([kp, kp.new_zeros(b, 1, 2)], 1)  # (B, 3, 2)
        vis = torch.tensor([1.0, 1.0, 0.0]).expand(b, 3)
        preds = []
        for i in range(b):
            inst = InstanceData()
            inst.keypoints = kp[i:i + 1].numpy()
            inst.keypoint_scores = vis[i:i + 1].numpy()
            inst.keypoints_visible = vis[i:i + 1].numpy()
            preds.append(inst)
        return self.add_pred_to_datasample(preds, None, data_samples)

    add_pred_to_datasample = TopdownPoseEstimator.add_pred_to_datasample


def _blob_batches(n_batches=2, batch_size=3, seed=0):
    """Images with one Gaussian blob per channel (0 and 1) near the centre."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:S, 0:S]
    batches = []
    for b in range(n_batches):
        inputs, samples = [], []
        for i in range(batch_size):
            img = np.zeros((3, S, S))
            for ch in range(2):
                cx, cy = rng.uniform(20, 44, size=2)
                img[ch] = 255 * np.exp(-((xs - cx)**2 + (ys - cy)**2) / 18.0)
            inputs.append(torch.from_numpy(img.round().astype(np.uint8)))
            ds = PoseDataSample(
                metainfo=dict(
                    input_center=CENTER,
                    input_scale=SCALE,
                    input_size=(S, S),
                    uld_split='test' if i else 'train',
                    img_path=f'blob_{b}_{i}.png'))
            # RoI: the central half of the crop (32 x 32 input pixels)
            ds.gt_instances = InstanceData(
                bboxes=np.array([[68.0, 48.0, 132.0, 112.0]]),
                bbox_scores=np.ones(1))
            samples.append(ds)
        batches.append(dict(inputs=inputs, data_samples=samples))
    return batches


def test_transform_matrix_matches_warp():
    """The matrix moves pixels where warp_images moves the image content."""
    img = torch.zeros(1, 1, S, S)
    img[0, 0, 20, 40] = 1.0  # (x, y) = (40, 20)
    m = torch.as_tensor(transform_matrix(90, (S, S)), dtype=torch.float32)
    out = warp_images(img, m[None], mode='nearest')
    y, x = divmod(int(out.flatten().argmax()), S)
    exp = transform_points(torch.tensor([[[40.0, 20.0]]]), m[None])[0, 0]
    assert (x, y) == (round(float(exp[0])), round(float(exp[1])))
    # counter-clockwise on screen (cv2 convention): a point right of the
    # centre goes up
    right = transform_points(torch.tensor([[[50.0, 31.5]]]), m[None])[0, 0]
    assert right[1] < 31.5 and abs(right[0] - 31.5) < 1e-4
    flip = transform_matrix(0, (S, S), flip=True)
    np.testing.assert_allclose(flip @ [0, 5, 1], [S - 1, 5])


def test_stub_equivariant_model_has_zero_error():
    """A perfectly equivariant predictor: ~0 error at +-30 degrees."""
    res = evaluate_equivariance(
        _StubModel(), _blob_batches(), angles=(-30, 30, 0))
    assert res['num_images'] == 6 and res['num_landmarks'] == 3
    for name in ('-30', '30', '0'):
        e = res['per_angle'][name]
        assert e['num_pairs'] == 12  # 6 images x 2 visible landmarks
        assert e['error'] < 0.1, e  # % of the 64-px input
        assert math.isnan(e['per_landmark'][2])
        assert e['visible_both'] == pytest.approx(2 / 3)
    assert res['per_angle']['0']['error'] < 1e-4
    assert res['overall']['num_pairs'] == 24  # identity left out
    assert res['overall']['error'] < 0.1
    # split filter
    res_test = evaluate_equivariance(
        _StubModel(), _blob_batches(), angles=(30, ), split='test')
    assert res_test['num_images'] == 4


def test_stub_fixed_point_gives_known_error():
    """A predictor ignoring the image: error = ||M^-1 p - p|| / 64."""
    p = np.array([10.0, 50.0])
    res = evaluate_equivariance(
        _StubModel(fixed=p.tolist()), _blob_batches(1, 2), angles=(30, ))
    m = np.vstack([transform_matrix(30, (S, S)), [0, 0, 1]])
    back = np.linalg.inv(m)[:2] @ np.append(p, 1)
    expected = np.linalg.norm(back - p) / S * 100
    e = res['per_angle']['30']
    assert e['num_pairs'] == 4
    assert e['error'] == pytest.approx(expected, rel=1e-4)
    assert e['per_landmark'][0] == pytest.approx(expected, rel=1e-4)
    # norm='bbox': the 32-px RoI doubles the percentage
    res = evaluate_equivariance(
        _StubModel(fixed=p.tolist()),
        _blob_batches(1, 2),
        angles=(30, ),
        norm='bbox')
    assert res['per_angle']['30']['error'] == pytest.approx(
        2 * expected, rel=1e-4)


def test_flip_with_given_indices():
    res = evaluate_equivariance(
        _StubModel(),
        _blob_batches(1, 2),
        angles=(),
        flip=True,
        flip_indices=[0, 1, 2])
    assert res['flip_indices_source'] == 'given'
    assert res['per_angle']['flip']['error'] < 0.1
    assert math.isnan(res['overall']['error'])
    with pytest.raises(ValueError, match='no transform'):
        evaluate_equivariance(_StubModel(), _blob_batches(1, 1), angles=())
    with pytest.raises(ValueError, match='no image'):
        evaluate_equivariance(
            _StubModel(), _blob_batches(1, 1), angles=(15, ), split='val')


@pytest.fixture(scope='module')
def uld_ckpt(trained_dldpp):
    """The session's D-ULD++ model trained on the face samples."""
    return trained_dldpp['checkpoint'], {
        'model.backbone.pretrained':
        trained_dldpp['cfg_options']['model.backbone.pretrained']
    }


def test_uld_landmarks_lie_inside_the_input(uld_ckpt):
    """Trained model: landmarks come from NMS peaks, which keep
    ``test_cfg.border`` map cells away from the edge of the input."""
    from mmengine.dataset import pseudo_collate

    from mmuld.apis import init_model
    from mmuld.evaluation.equivariance_eval import predict_input_landmarks
    from mmuld.registry import DATASETS
    ckpt, opts = uld_ckpt
    model = init_model(CONFIG, ckpt, 'cpu', opts)
    split = dict(model.cfg.test_dataloader.dataset.datasets[1])
    split['data_root'] = osp.join(ROOT, 'data', 'face_samples')
    dataset = DATASETS.build(split)
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(len(dataset))]), False)
    kp, vis, _ = predict_input_landmarks(model, data['inputs'],
                                         data['data_samples'])
    assert vis.float().mean() > 0.5
    border = model.test_cfg.get('border', 1)
    lo = (border + 0.5) * model.stride - 0.5
    hi = (S / model.stride - border - 0.5) * model.stride - 0.5
    pts = kp[vis]
    assert bool(((pts >= lo - 1e-4) & (pts <= hi + 1e-4)).all()), pts
    # the landmarks of an image are spread out, not on one line
    for i in range(kp.shape[0]):
        assert kp[i][vis[i]].std(0).min() > 1.0, kp[i]


def test_uld_estimator_and_cli(uld_ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the config's data_root is relative
    ckpt, opts = uld_ckpt
    cli = _load_cli()
    out = tmp_path / 'equiv.json'
    argv = [
        CONFIG, ckpt, '--angles', '0', '30', '--split', 'test', '--out',
        str(out), '--cfg-options'
    ] + [f'{k}={v}' for k, v in opts.items()]
    res = cli.main(argv)
    printed = capsys.readouterr().out
    assert '30 deg' in printed and 'overall' in printed
    with open(out) as f:
        saved = json.load(f)
    with open(osp.join(ROOT, 'data', 'face_samples',
                       'uld_5pt_test.json')) as f:
        n_test = len(json.load(f)['annotations'])
    assert saved['num_images'] == res['num_images'] == n_test  # test only
    assert saved['num_landmarks'] == 10
    assert saved['input_size'] == [64, 64]
    for key in ('per_angle', 'overall', 'visible_original', 'norm', 'split'):
        assert key in saved
    zero, rot = saved['per_angle']['0'], saved['per_angle']['30']
    # (a) the identity warp reproduces the predictions (up to the float
    # rounding of the identity matrix about the centre)
    assert zero['num_pairs'] > 0 and zero['error'] < 1e-3
    assert zero['visible_both'] == pytest.approx(saved['visible_original'])
    # (b) finite errors, documented keys
    for e in (zero, rot):
        assert set(e) >= {
            'angle', 'flip', 'error', 'median', 'per_landmark', 'visible_both',
            'out_of_frame', 'num_pairs'
        }
        assert 0 <= e['visible_both'] <= 1 and len(e['per_landmark']) == 10
    assert rot['num_pairs'] > 0 and np.isfinite(rot['error'])
    assert 0 <= rot['error'] < 100 * math.sqrt(2)
    assert saved['overall']['error'] == pytest.approx(rot['error'])
    assert 'overall' in format_equivariance_table(saved)


def test_landmarks_rotated_out_of_the_input_are_left_out():
    """A point near the corner leaves the input under a 30 degree turn:
    no pair counts, all are reported out of frame; a central point stays."""
    corner = evaluate_equivariance(
        _StubModel(fixed=[1.0, 1.0]), _blob_batches(1, 2), angles=(30, ))
    e = corner['per_angle']['30']
    assert e['num_pairs'] == 0 and math.isnan(e['error'])
    assert e['out_of_frame'] == pytest.approx(2 / 3)
    assert e['visible_both'] == pytest.approx(2 / 3)
    centre = evaluate_equivariance(
        _StubModel(fixed=[30.0, 34.0]), _blob_batches(1, 2), angles=(30, ))
    e = centre['per_angle']['30']
    assert e['num_pairs'] == 4 and e['out_of_frame'] == 0.0


@pytest.fixture(scope='module')
def zeroshot(tiny_sd_dir):
    from mmengine.config import Config

    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'zeroshot_face_samples_demo.py'))
    cfg.model.backbone.pretrained = tiny_sd_dir
    cfg.model.num_landmarks = 4
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    data = model.data_preprocessor(_blob_batches(1, 3)[0], False)
    _, desc, valid = model.sample_descriptors_in_roi(data['inputs'],
                                                     data['data_samples'])
    model.fit(desc[valid])
    return model, data


def test_zeroshot_transformed_input_reuses_the_moved_samples(zeroshot):
    """On a warped input ZeroShot picks its landmarks among the pixels it
    sampled on the original input, moved by the warp (so its random
    sampling is not counted as equivariance error)."""
    from mmuld.evaluation.equivariance_eval import predict_input_landmarks
    model, data = zeroshot
    inputs, samples = data['inputs'], data['data_samples']
    kp, vis, pts = predict_input_landmarks(model, inputs, samples)
    assert pts is not None and vis.any()
    b = inputs.shape[0]
    m = torch.as_tensor(transform_matrix(20, (S, S)),
                        dtype=torch.float32).expand(b, 2, 3)
    q, qv, same = predict_input_landmarks(model, warp_images(inputs, m),
                                          samples, m, pts)
    assert same is pts and qv.any()
    moved = transform_points(pts, m)
    for i in range(b):
        d = torch.cdist(q[i][qv[i]], moved[i],
                        compute_mode='donot_use_mm_for_euclid_dist')
        d = d.min(1).values
        assert d.max() < 1e-3, d
    # the identity warp reproduces the original landmarks exactly
    eye = torch.tensor([[1., 0., 0.], [0., 1., 0.]]).expand(b, 2, 3)
    q0, qv0, _ = predict_input_landmarks(model, inputs, samples, eye, pts)
    assert torch.equal(qv0, vis)
    torch.testing.assert_close(q0[vis], kp[vis])
