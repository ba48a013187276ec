# Copyright (c) mmuld contributors. All rights reserved.
"""ZeroShot baseline: model, fit hook, LoadRoIs and landmark dump."""
import json
import os
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

from mmuld.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DATA_ROOT = osp.join(ROOT, 'data', 'face_samples')
CONFIG = osp.join(ROOT, 'configs', 'zeroshot_face_samples_demo.py')
K = 6


def _cfg(tiny_sd_dir, work_dir=None, name='zs'):
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.pretrained = tiny_sd_dir
    cfg.model.num_landmarks = K
    cfg.visualizer.num_landmarks = K
    for ds in [
            cfg.custom_hooks[0].fit_dataloader.dataset,
            *cfg.test_dataloader.dataset.datasets
    ]:
        ds.data_root = DATA_ROOT
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    return cfg


def _batch(model, split_cfg, pipeline=None):
    """All images of one split as one preprocessed batch."""
    from mmuld.registry import DATASETS
    split_cfg = dict(split_cfg)
    if pipeline is not None:
        split_cfg['pipeline'] = pipeline
    dataset = DATASETS.build(split_cfg)
    data = pseudo_collate([dataset[i] for i in range(len(dataset))])
    return model.data_preprocessor(data, False)


@pytest.fixture(scope='module')
def setup(tiny_sd_dir):
    from mmuld.registry import MODELS
    cfg = _cfg(tiny_sd_dir)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    train_cfg = cfg.custom_hooks[0].fit_dataloader.dataset
    test_cfg = cfg.test_dataloader.dataset.datasets[1]
    train = _batch(model, train_cfg)
    test = _batch(model, test_cfg)
    return cfg, model, train, test


@pytest.fixture(scope='module')
def fitted(setup):
    cfg, model, train, test = setup
    pts, desc, valid = model.sample_descriptors_in_roi(train['inputs'],
                                                       train['data_samples'])
    res = model.fit(desc[valid])
    return model, res


# --------------------------------------------------------------------- #
# RoI mapping
# --------------------------------------------------------------------- #
def test_roi_mapping_round_trip_and_matches_topdown_affine():
    from mmpose.structures.bbox import get_warp_matrix

    from mmuld.models.pose_estimators import (image_to_input_coords,
                                              input_to_image_coords,
                                              roi_to_input)
    rng = np.random.default_rng(0)
    center = np.array([310.5, 220.25])
    scale = np.array([160.0, 240.0])  # input aspect, as in TopdownAffine
    size = np.array([64, 96])
    pts = rng.uniform(0, 500, (7, 2)).astype(np.float32)
    inp = image_to_input_coords(pts, center, scale, size)
    back = input_to_image_coords(inp, center, scale, size)
    np.testing.assert_allclose(back.numpy(), pts, rtol=1e-5, atol=1e-3)
    # same mapping as the affine warp of mmpose's TopdownAffine
    warp = get_warp_matrix(center, scale, 0, output_size=size)
    ref = pts @ warp[:, :2].T + warp[:, 2]
    np.testing.assert_allclose(inp.numpy(), ref, atol=1e-3)
    # the box centre maps to the input centre
    box = np.array(
        [center[0] - 40, center[1] - 60, center[0] + 40, center[1] + 60])
    roi = roi_to_input(box, center, scale, size)
    np.testing.assert_allclose(
        ((roi[:2] + roi[2:]) / 2).numpy(), size / 2, atol=1e-4)
    with pytest.raises(ValueError, match='4 values'):
        roi_to_input([1, 2, 3], center, scale, size)


# --------------------------------------------------------------------- #
# model
# --------------------------------------------------------------------- #
def test_samples_inside_roi_and_deterministic(setup):
    cfg, model, train, _ = setup
    pts, desc, valid = model.sample_descriptors_in_roi(train['inputs'],
                                                       train['data_samples'])
    b = len(train['data_samples'])
    n = cfg.model.samples_per_image
    d = model.backbone.out_channels
    assert pts.shape == (b, n, 2) and desc.shape == (b, n, d)
    assert valid.all()
    np.testing.assert_allclose(desc.norm(dim=-1).numpy(), 1.0, atol=1e-4)
    size = train['inputs'].shape[-1]
    for i, ds in enumerate(train['data_samples']):
        roi = model.roi_in_input(ds, (size, size))
        assert (pts[i] >= roi[:2] - 1e-4).all()
        assert (pts[i] <= roi[2:] + 1e-4).all()
        # padded (1.25) square crop: the RoI is centred and its longer
        # side spans 80 % of the input
        wh = roi[2:] - roi[:2]
        assert abs(float(wh.max()) - 0.8 * size) < 1.0
        torch.testing.assert_close(
            (roi[:2] + roi[2:]) / 2,
            torch.full((2, ), size / 2.0),
            atol=1.0,
            rtol=0)
    # same seed, one image at a time: identical points (batch independent)
    pts1, _, _ = model.sample_descriptors_in_roi(train['inputs'][:1],
                                                 train['data_samples'][:1])
    torch.testing.assert_close(pts1[0], pts[0])
    model.seed += 1
    try:
        pts2, _, _ = model.sample_descriptors_in_roi(train['inputs'][:1],
                                                     train['data_samples'][:1])
    finally:
        model.seed -= 1
    assert not torch.allclose(pts2[0], pts[0])


def test_degenerate_roi_falls_back_to_whole_input(setup):
    _, model, train, _ = setup
    ds = train['data_samples'][0].clone()
    box = ds.gt_instances.bboxes.copy()
    box[0, 2] = box[0, 0]  # zero width
    ds.gt_instances.bboxes = box
    before = model.num_roi_fallbacks
    size = train['inputs'].shape[-1]
    roi = model.roi_in_input(ds, (size, size))
    assert model.num_roi_fallbacks == before + 1
    assert roi.tolist() == [0.0, 0.0, size - 1.0, size - 1.0]


def test_not_fitted_and_no_training(setup, tiny_sd_dir):
    from mmuld.registry import MODELS
    cfg, _, _, test = setup
    model = MODELS.build(cfg.model)
    with pytest.raises(RuntimeError, match='ZeroShotFitHook'):
        model.predict(test['inputs'], test['data_samples'])
    with pytest.raises(NotImplementedError, match='no training'):
        model.loss(test['inputs'], test['data_samples'])
    with pytest.raises(ValueError, match='centroids must have shape'):
        model.set_centroids(torch.zeros(K + 1, 4))


def test_fit_then_predict_landmarks_in_roi(setup, fitted):
    _, _, train, test = setup
    model, res = fitted
    d = model.backbone.out_channels
    assert model.zs_centroids.shape == (K, d)
    assert res.labels.unique().numel() == K
    preds = model.predict(test['inputs'], test['data_samples'])
    assert len(preds) == len(test['data_samples'])
    for p in preds:
        inst = p.pred_instances
        assert inst.keypoints.shape == (1, K, 2)
        assert inst.keypoint_scores.shape == (1, K)
        assert inst.descriptors.shape == (1, K, d)
        vis = inst.keypoints_visible[0].astype(bool)
        assert vis.sum() >= K // 2
        assert ((inst.keypoint_scores[0] > 0) == vis).all()
        x1, y1, x2, y2 = p.gt_instances.bboxes[0]
        kp = inst.keypoints[0][vis]
        assert (kp[:, 0] >= x1 - 1).all() and (kp[:, 0] <= x2 + 1).all()
        assert (kp[:, 1] >= y1 - 1).all() and (kp[:, 1] <= y2 + 1).all()
    # deterministic for a seed
    again = model.predict(test['inputs'], test['data_samples'])
    for a, b in zip(preds, again):
        np.testing.assert_array_equal(a.pred_instances.keypoints,
                                      b.pred_instances.keypoints)


def test_exemplar_is_nearest_point_of_its_cluster(fitted, setup):
    _, _, _, test = setup
    model, _ = fitted
    pts, desc, valid = model.sample_descriptors_in_roi(
        test['inputs'][:1], test['data_samples'][:1])
    out = model.assign_landmarks(pts, desc, valid)
    d2 = torch.cdist(desc[0], model.zs_centroids)**2  # (N, K)
    label = d2.argmin(1)
    for c in range(K):
        own = (label == c).nonzero().squeeze(1)
        if own.numel() == 0:
            assert out['visible'][0, c] == 0
            continue
        best = own[d2[own, c].argmin()]
        torch.testing.assert_close(out['keypoints'][0, c], pts[0, best])


def test_corner_samples_lie_on_corners_inside_the_roi(setup):
    """samples='corners': the samples are the RoI's strongest corners: on
    a white square on black they are its four corners, and a corner
    outside the RoI is never taken."""
    from mmuld.registry import MODELS
    cfg, _, _, test = setup
    with pytest.raises(ValueError, match='samples must be one of'):
        MODELS.build(dict(cfg.model, samples='grid'))
    model = MODELS.build(
        dict(cfg.model, samples='corners', samples_per_image=8)).eval()
    s = test['inputs'].shape[-1]
    inputs = -torch.ones(1, 3, s, s)
    a, b = s // 4, 3 * s // 4
    inputs[..., a:b, a:b] = 1.0
    ds = test['data_samples'][0].clone()
    ds.set_metainfo(dict(input_center=np.array([s / 2, s / 2]),
                         input_scale=np.array([s, s], dtype=np.float32),
                         input_size=(s, s), ori_shape=(s, s)))
    ds.gt_instances.bboxes = np.array([[0, 0, s - 1, s - 1]], np.float32)
    pts, desc, valid = model.sample_descriptors_in_roi(inputs, [ds])
    assert desc.shape[:2] == pts.shape[:2] == (1, 8)
    found = pts[0][valid[0]]
    square = torch.tensor([[a, a], [b - 1, a], [a, b - 1], [b - 1, b - 1]],
                          dtype=torch.float32)
    # each corner of the square has a sample within 2 px
    assert (torch.cdist(square, found).min(1).values <= 2.0).all()
    # an RoI around the top-left corner only: no sample near the others
    ds.gt_instances.bboxes = np.array([[0, 0, s // 2, s // 2]], np.float32)
    pts, _, valid = model.sample_descriptors_in_roi(inputs, [ds])
    found = pts[0][valid[0]]
    assert len(found) >= 1
    assert (found <= s // 2 + 0.5).all()
    assert torch.cdist(square[:1], found).min() <= 2.0


def test_peak_decoding_finds_the_cell_a_centroid_was_taken_from(setup):
    """decode='peaks': a centroid copied from one cell of an image peaks
    at that cell (known answer), inside the RoI, and the mode is checked."""
    from mmuld.registry import MODELS
    cfg, _, _, test = setup
    with pytest.raises(ValueError, match='decode must be one of'):
        MODELS.build(dict(cfg.model, decode='argmax'))
    model = MODELS.build(dict(cfg.model, decode='peaks')).eval()
    assert not model.samples_points
    inputs, samples = test['inputs'][:2], test['data_samples'][:2]
    with torch.no_grad():
        feat = torch.nn.functional.normalize(
            model.extract_feat(inputs)[-1].float(), dim=1)
    h, w = feat.shape[-2:]
    mask = model.roi_cells(samples, tuple(inputs.shape[-2:]), (h, w))
    # K cells inside the first image's RoI and off the border
    inside = mask[0].clone()
    inside[[0, -1]] = False
    inside[:, [0, -1]] = False
    cells = inside.nonzero()
    cells = cells[torch.linspace(0, len(cells) - 1, K).long()]
    model.set_centroids(feat[0, :, cells[:, 0], cells[:, 1]].T)
    res = model.input_landmarks(inputs, samples)
    assert res['keypoints'].shape == (2, K, 2)
    assert bool(res['visible'].all())
    cell_xy = (res['keypoints'][0] + 0.5) / model.stride - 0.5
    # a parabola fit moves a peak by at most half a cell
    assert (cell_xy - cells.flip(1).float()).abs().max() <= 0.5 + 1e-4
    torch.testing.assert_close(res['scores'][0], torch.ones(K))
    # in every image the peaks stay in the RoI's cells
    for b in range(2):
        c = ((res['keypoints'][b] + 0.5) / model.stride - 0.5).round().long()
        assert bool(mask[b, c[:, 1], c[:, 0]].all())


def test_centroids_in_state_dict(fitted, setup):
    from mmuld.registry import MODELS
    cfg = setup[0]
    model, _ = fitted
    other = MODELS.build(cfg.model)
    assert not other.is_fitted
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other.zs_centroids, model.zs_centroids)


# --------------------------------------------------------------------- #
# LoadRoIs
# --------------------------------------------------------------------- #
def test_load_rois(tmp_path, setup):
    from mmuld.datasets.transforms import LoadRoIs
    roi_file = tmp_path / 'rois.json'
    json.dump(
        dict(
            rois={
                '300w/indoor_029.png': [100, 120, 400, 460],
                'image04476.jpg': [10, 20, 30, 40],  # basename key
                'cofw/001766.jpg': None
            },
            counts={}),
        open(roi_file, 'w'))
    t = LoadRoIs(str(roi_file))
    ann = np.array([[1, 2, 3, 4]], dtype=np.float32)
    r = t(
        dict(
            img_path=osp.join(DATA_ROOT, '300w/indoor_029.png'),
            bbox=ann.copy()))
    np.testing.assert_array_equal(r['bbox'], [[100, 120, 400, 460]])
    assert r['bbox'].dtype == np.float32 and r['roi_source'] == 'file'
    r = t(dict(img_path='x/aflw/image04476.jpg', bbox=ann.copy()))
    np.testing.assert_array_equal(r['bbox'], [[10, 20, 30, 40]])
    with pytest.warns(UserWarning, match='annotation'):
        r = t(dict(img_path='cofw/001766.jpg', bbox=ann.copy()))
    np.testing.assert_array_equal(r['bbox'], ann)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned only once
        r = t(dict(img_path='wflw/none.jpg', bbox=ann.copy()))
    assert t.num_missing == 2 and t.num_loaded == 2
    whole = LoadRoIs(str(roi_file), fallback='whole_image')
    with pytest.warns(UserWarning):
        r = whole(dict(img_path='a.jpg', bbox=ann, img_shape=(50, 70)))
    np.testing.assert_array_equal(r['bbox'], [[0, 0, 70, 50]])
    with pytest.raises(KeyError, match='no RoI'):
        LoadRoIs(str(roi_file), fallback='error')(dict(img_path='a.jpg'))
    with pytest.raises(FileNotFoundError):
        LoadRoIs(str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match='fallback'):
        LoadRoIs(str(roi_file), fallback='nope')
    json.dump(dict(rois={'a.jpg': [1, 2]}), open(tmp_path / 'bad.json', 'w'))
    with pytest.raises(ValueError, match='x1, y1, x2, y2'):
        LoadRoIs(str(tmp_path / 'bad.json'))

    # in the real pipeline the RoI drives the crop and gt bbox
    cfg, model = setup[0], setup[1]
    pipeline = [
        dict(type='LoadImage'),
        dict(type='LoadRoIs', roi_file=str(roi_file))
    ]
    pipeline += list(cfg.pipeline[1:])
    split = cfg.custom_hooks[0].fit_dataloader.dataset
    batch = _batch(model, split, pipeline)
    got = {
        osp.basename(ds.img_path): ds.gt_instances.bboxes[0]
        for ds in batch['data_samples']
    }
    np.testing.assert_allclose(got['indoor_029.png'], [100, 120, 400, 460])
    ds = [
        d for d in batch['data_samples']
        if d.img_path.endswith('indoor_029.png')
    ][0]
    np.testing.assert_allclose(ds.input_center, [250, 290])


# --------------------------------------------------------------------- #
# fit hook + landmark dump, through tools/test.py's Runner
# --------------------------------------------------------------------- #
def _hook(runner):
    return [h for h in runner.hooks
            if type(h).__name__ == 'ZeroShotFitHook'][0]


def test_fit_hook_saves_then_reuses(tmp_path, tiny_sd_dir):
    work = tmp_path / 'zs'
    runner = Runner.from_cfg(_cfg(tiny_sd_dir, work, 'zs_run1'))
    metrics = runner.test()
    hook = _hook(runner)
    assert hook.source == 'fitted' and hook.num_fits == 1
    path = work / 'zeroshot_centroids.pth'
    state = torch.load(path, weights_only=True)
    assert state['centroids'].shape == (K, runner.model.backbone.out_channels)
    assert state['meta']['num_images'] == 8  # the training split
    assert state['meta']['num_points'] == 8 * 200
    assert np.isfinite(metrics['uld/forward_nme'])
    assert np.isfinite(metrics['uld/backward_nme'])
    mtime = os.stat(path).st_mtime_ns

    # landmark dump
    dump = json.load(open(work / 'landmarks.json'))
    assert dump['num_landmarks'] == K
    assert len(dump['images']) == 12  # train + test samples
    assert {im['uld_split'] for im in dump['images']} == {'train', 'test'}
    for im in dump['images']:
        assert len(im['keypoints']) == K and len(im['keypoints'][0]) == 2
        assert len(im['scores']) == K
        assert set(im['visible']) <= {0, 1}
        assert osp.isfile(im['img_path']) and len(im['bbox']) == 4

    # second run: the file is reused, nothing recomputed
    runner2 = Runner.from_cfg(_cfg(tiny_sd_dir, work, 'zs_run2'))
    runner2.call_hook('before_test')  # what runner.test() runs first
    hook2 = _hook(runner2)
    assert hook2.source == 'file' and hook2.num_fits == 0
    assert os.stat(path).st_mtime_ns == mtime
    torch.testing.assert_close(runner2.model.zs_centroids.cpu(),
                               state['centroids'])

    # another sampling setting: the stale file is not reused
    cfg3 = _cfg(tiny_sd_dir, work, 'zs_run3')
    cfg3.model.samples_per_image = 50
    runner3 = Runner.from_cfg(cfg3)
    runner3.call_hook('before_test')
    assert _hook(runner3).source == 'fitted'
    assert torch.load(path, weights_only=True)['meta']['num_points'] == 400

    # corners instead of random pixels: refitted too
    cfg4 = _cfg(tiny_sd_dir, work, 'zs_run4')
    cfg4.model.samples_per_image = 50
    cfg4.model.samples = 'corners'
    runner4 = Runner.from_cfg(cfg4)
    runner4.call_hook('before_test')
    assert _hook(runner4).source == 'fitted'


def test_landmark_dump_metric_format(tmp_path):
    from mmuld.evaluation.metrics import LandmarkDumpMetric
    out = tmp_path / 'sub' / 'lm.json'
    metric = LandmarkDumpMetric(out_file=str(out))
    samples = [
        dict(
            img_path=f'img{i}.jpg',
            img_id=np.int64(i),
            uld_split='test',
            input_center=np.array([5., 6.]),
            input_scale=np.array([8., 8.]),
            input_size=(4, 4),
            gt_instances=dict(bboxes=np.array([[0., 0., 10., 10.]])),
            pred_instances=dict(
                keypoints=np.full((1, 3, 2), float(i)),
                keypoint_scores=np.array([[0.5, 0.2, 0.]]),
                keypoints_visible=np.array([[1., 1., 0.]]))) for i in range(2)
    ]
    metric.process({}, samples)
    assert metric.evaluate(2) == {}
    data = json.load(open(out))
    assert data['num_landmarks'] == 3
    assert data['images'][1] == dict(
        img_path='img1.jpg',
        img_id=1,
        uld_split='test',
        bbox=[0., 0., 10., 10.],
        crop=[1., 2., 9., 10.],
        input_size=[4, 4],
        keypoints=[[1., 1.], [1., 1.], [0., 0.]],  # not found: at (0, 0)
        scores=[0.5, 0.2, 0.],
        visible=[1, 1, 0])
    # with the image size: a landmark outside the image is not visible
    # either (the convention of the inferencer and the export)
    inside = LandmarkDumpMetric(out_file=str(tmp_path / 'in.json'))
    inside.process({}, [dict(samples[1], ori_shape=(5, 1))])
    inside.evaluate(1)
    img = json.load(open(tmp_path / 'in.json'))['images'][0]
    assert img['visible'] == [0, 0, 0]  # x = 1 > w - 0.5
    assert img['keypoints'] == [[0., 0.]] * 3 and img['scores'] == [0.] * 3
    with pytest.raises(ValueError, match='json'):
        LandmarkDumpMetric(out_file='x.txt')
    bad = LandmarkDumpMetric(out_file=str(out))
    with pytest.raises(ValueError, match='pred_instances'):
        bad.process({}, [dict(img_path='a')])
