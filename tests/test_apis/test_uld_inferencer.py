# Copyright (c) mmuld contributors. All rights reserved.
"""ULDInferencer on folders, videos, arrays, given boxes and a detector."""
import json
import os.path as osp
import shutil

import cv2
import mmcv
import numpy as np
import pytest
from mmengine.config import Config

from mmuld.apis import ULDInferencer
from mmuld.registry import INFERENCERS

FACE_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'data',
    'face_samples')

IMG_300W = sorted(
    osp.join(FACE_DIR, '300w', f) for f in ('indoor_020.png',
                                            'indoor_029.png'))
RTMDET = osp.join(
    osp.dirname(__import__('mmdet').__file__), '.mim', 'configs', 'rtmdet',
    'rtmdet_tiny_8xb32-300e_coco.py')


@pytest.fixture(scope='module')
def inferencer(uld_checkpoint):
    return ULDInferencer(
        uld_checkpoint['config'],
        uld_checkpoint['checkpoint'],
        device='cpu',
        cfg_options=uld_checkpoint['cfg_options'],
        show_progress=False)


def _check_pred(pred, k, box):
    kpts = np.asarray(pred['keypoints'])
    vis = np.asarray(pred['keypoints_visible'])
    assert kpts.shape == (k, 2)
    assert len(pred['keypoint_scores']) == k and vis.shape == (k, )
    assert set(vis.tolist()) <= {0, 1} and vis.sum() > 0
    # visible landmarks lie in the padded (x1.25) crop of the RoI, at
    # least the NMS border (1 cell of 4 input pixels, i.e. 6 of the 64
    # input pixels to the cell centre) away from its edges
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = 1.25 * max(x2 - x1, y2 - y1)
    half = side / 2 - side * 5 / 64
    assert np.all(np.abs(kpts[vis > 0, 0] - cx) <= half), (kpts, box)
    assert np.all(np.abs(kpts[vis > 0, 1] - cy) <= half), (kpts, box)
    # and they are spread over the face, not on one line
    assert np.all(kpts[vis > 0].std(0) > side / 64), kpts
    scores = np.asarray(pred['keypoint_scores'])
    assert np.all(scores[vis == 0] == 0) and np.all(scores[vis > 0] > 0)


def test_registered():
    assert INFERENCERS.get('ULDInferencer') is ULDInferencer


def test_folder_writes_json_and_images(inferencer, uld_checkpoint, tmp_path):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for p in IMG_300W:
        shutil.copy(p, folder)
    (folder / 'notes.txt').write_text('not an image')
    out_dir = tmp_path / 'out'
    out = inferencer(str(folder), out_dir=str(out_dir), batch_size=2)
    k = uld_checkpoint['num_landmarks']
    preds = out['predictions']
    assert [osp.basename(p['img_path']) for p in preds] == [
        osp.basename(p) for p in IMG_300W
    ]
    for p, path in zip(preds, IMG_300W):
        h, w = mmcv.imread(path).shape[:2]
        assert p['bbox'] == [0.0, 0.0, float(w), float(h)]
        assert p['roi_source'] == 'whole_image'
        _check_pred(p, k, p['bbox'])
        vis_img = mmcv.imread(str(out_dir / 'visualizations' /
                                  osp.basename(path)))
        assert vis_img.shape[:2] == (h, w)
        assert not np.array_equal(vis_img, mmcv.imread(path))
    with open(out_dir / 'landmarks.json') as f:
        dump = json.load(f)
    assert dump['format'] == 'mmuld.landmarks.v1'
    assert dump['num_landmarks'] == k
    assert [d['keypoints'] for d in dump['images']] == [
        p['keypoints'] for p in preds
    ]
    assert [d['visible'] for d in dump['images']] == [
        p['keypoints_visible'] for p in preds
    ]
    # batch size does not change the result
    again = inferencer(IMG_300W, batch_size=1)['predictions']
    for a, b in zip(again, preds):
        np.testing.assert_allclose(a['keypoints'], b['keypoints'], atol=1e-3)


def test_video_input(inferencer, uld_checkpoint, tmp_path):
    img = mmcv.imread(IMG_300W[0])
    img = mmcv.imresize(img, (160, 160))
    video = str(tmp_path / 'face.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (160, 160))
    frames = [img, np.ascontiguousarray(img[:, ::-1]), img]
    for fr in frames:
        writer.write(fr)
    writer.release()
    out_dir = tmp_path / 'out'
    out = inferencer(video, out_dir=str(out_dir), return_vis=True)
    preds = out['predictions']
    assert [p['frame_index'] for p in preds] == [0, 1, 2]
    assert len(out['visualization']) == 3
    for p in preds:
        assert p['img_path'] == video
        _check_pred(p, uld_checkpoint['num_landmarks'], [0, 0, 160, 160])
    # a video frame gives the same landmarks as the decoded frame as an image
    decoded = mmcv.VideoReader(video)[2]
    single = inferencer(decoded)['predictions'][0]
    np.testing.assert_allclose(single['keypoints'], preds[2]['keypoints'],
                               atol=1e-3)
    assert single['keypoints_visible'] == preds[2]['keypoints_visible']
    cap = cv2.VideoCapture(str(out_dir / 'visualizations' / 'face.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()
    with open(out_dir / 'landmarks.json') as f:
        dump = json.load(f)
    assert [d['frame_index'] for d in dump['images']] == [0, 1, 2]


def test_array_and_given_boxes(uld_checkpoint):
    inf = ULDInferencer(
        uld_checkpoint['config'],
        uld_checkpoint['checkpoint'],
        device='cpu',
        roi='annotation',
        cfg_options=uld_checkpoint['cfg_options'],
        show_progress=False)
    img = mmcv.imread(IMG_300W[1])
    box = [223.7, 217.4, 755.0, 788.8]
    with pytest.raises(ValueError, match='bboxes'):
        inf(img)
    pred = inf(img, bboxes=[box])['predictions'][0]
    assert pred['img_path'] is None and pred['roi_source'] == 'given'
    np.testing.assert_allclose(pred['bbox'], box, atol=1e-3)
    _check_pred(pred, uld_checkpoint['num_landmarks'], box)


@pytest.mark.slow  # ~25 s: builds and runs an RTMDet on the CPU
def test_detector_roi_with_fallback(uld_checkpoint):
    det_cfg = Config.fromfile(RTMDET)
    # a small input keeps the random-weight detector fast on the CPU
    for t in det_cfg.test_pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (160, 160)
    det_cfg.test_dataloader.dataset.pipeline = det_cfg.test_pipeline
    inf = ULDInferencer(
        uld_checkpoint['config'],
        uld_checkpoint['checkpoint'],
        device='cpu',
        roi=dict(det_config=det_cfg, score_thr=0.0),
        cfg_options=uld_checkpoint['cfg_options'],
        show_progress=False)
    img = mmcv.imread(IMG_300W[0])
    pred = inf(img)['predictions'][0]
    detector = inf.roi_provider.providers[0]
    expected = detector(img, {})
    assert expected is not None  # random weights still give boxes > 0
    assert pred['roi_source'] == 'detector'
    np.testing.assert_allclose(pred['bbox'], expected, atol=1e-3)
    # nothing passes score_thr=1: the whole image is used and counted
    detector.score_thr = 1.0
    pred = inf(img)['predictions'][0]
    h, w = img.shape[:2]
    assert pred['roi_source'] == 'whole_image'
    assert pred['bbox'] == [0.0, 0.0, float(w), float(h)]
    assert inf.roi_provider.counts['whole_image'] == 1


def test_bad_inputs(inferencer, uld_checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer(str(tmp_path / 'missing.png'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no image files'):
        inferencer(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='roi'):
        ULDInferencer(
            uld_checkpoint['config'],
            uld_checkpoint['checkpoint'],
            roi='face',
            cfg_options=uld_checkpoint['cfg_options'])
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        ULDInferencer(
            uld_checkpoint['config'],
            str(tmp_path / 'nope.pth'),
            cfg_options=uld_checkpoint['cfg_options'])
