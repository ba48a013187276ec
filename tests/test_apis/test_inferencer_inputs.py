# Copyright (c) mmuld contributors. All rights reserved.
"""The inferencer on grey / float / BGRA / empty arrays, the one landmark
convention (visible = found and inside the image; else (0, 0), score 0)
shared with the export, and the export's output name."""
import json
import logging
import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest

from mmuld.apis import (ULDInferencer, clean_landmarks, export_pseudo_labels,
                        to_bgr_uint8)

FACE_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'data',
    'face_samples')
IMG = osp.join(FACE_DIR, '300w', 'indoor_029.png')
BOX = [223.7, 217.4, 755.0, 788.8]


@pytest.fixture(scope='module')
def inf(uld_checkpoint):
    return ULDInferencer(
        uld_checkpoint['config'],
        uld_checkpoint['checkpoint'],
        device='cpu',
        roi='annotation',
        cfg_options=uld_checkpoint['cfg_options'],
        show_progress=False)


@pytest.fixture(scope='module')
def bgr():
    return mmcv.imread(IMG)


def _pred(inf, img, box=BOX):
    return inf(img, bboxes=[box])['predictions'][0]


def test_to_bgr_uint8_conversions():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_bgr_uint8(grey)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert (out == grey[..., None]).all()
    bgra = np.dstack([out, np.full((3, 4), 7, np.uint8)])
    assert np.array_equal(to_bgr_uint8(bgra), out)
    assert np.array_equal(to_bgr_uint8(out / 255.0), out)
    assert np.array_equal(to_bgr_uint8(out.astype(np.float32)), out)
    for bad, msg in [(np.zeros((0, 4, 3), np.uint8), 'empty'),
                     (np.zeros((3, 4, 2), np.uint8), 'shape'),
                     (np.zeros((3, 4, 3), np.uint16), 'dtype'),
                     (np.full((3, 4, 3), -1.0), r'\[0, 1\]'),
                     (np.full((3, 4, 3), np.nan), 'NaN')]:
        with pytest.raises(ValueError, match=msg):
            to_bgr_uint8(bad, 'input 3')


def test_clean_landmarks_hand_values():
    kpts = np.array([[10., 20.], [745.5, 30.], [-0.5, 0.], [5., 5.]])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    vis = np.array([1, 1, 1, 0])
    k, s, v = clean_landmarks(kpts, scores, vis, (100, 726))
    assert v.tolist() == [1, 0, 1, 0]
    assert k.tolist() == [[10, 20], [0, 0], [-0.5, 0], [0, 0]]
    assert s.tolist() == [0.9, 0, 0.7, 0]


def test_grey_float_bgra_arrays_give_the_bgr_result(inf, bgr):
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    imgs = [
        bgr,
        np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]),  # BGRA
        bgr.astype(np.float32) / 255.0,  # float in [0, 1]
        bgr.astype(np.float64),  # float in [0, 255]
        cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR),
        grey,  # (H, W)
        grey[..., None],  # (H, W, 1)
    ]
    preds = inf(imgs, bboxes=[BOX] * len(imgs),
                batch_size=len(imgs))['predictions']
    for i in (1, 2, 3):
        assert preds[i]['keypoints'] == preds[0]['keypoints'], i
        assert preds[i]['keypoints_visible'] == \
            preds[0]['keypoints_visible'], i
    for i in (5, 6):
        assert preds[i]['keypoints'] == preds[4]['keypoints'], i
    # the grey image is a different input: a different result
    assert preds[4]['keypoints'] != preds[0]['keypoints']


def test_bad_arrays_are_refused_before_running(inf, bgr):
    with pytest.raises(ValueError, match='input 0: the image array is empty'):
        inf(np.zeros((0, 0, 3), np.uint8), bboxes=[BOX])
    with pytest.raises(ValueError, match='input 1: unsupported dtype'):
        inf([bgr, bgr.astype(np.int32)], bboxes=[BOX, BOX])


@pytest.fixture
def doctored(inf, bgr, monkeypatch):
    """The model reports landmark 0 unmatched (at its raw position) and
    landmark 1 'found' 20 px right of the image."""
    orig = inf.model.predict
    w = bgr.shape[1]

    def predict(*args, **kwargs):
        samples = orig(*args, **kwargs)
        for ds in samples:
            inst = ds.pred_instances
            inst.keypoints_visible[0, 0] = 0
            inst.keypoints[0, 0] = (-117.0, -96.0)
            inst.keypoints_visible[0, 1] = 1
            inst.keypoints[0, 1] = (w + 20.0, 5.0)
            inst.keypoint_scores[0, 1] = 0.9
        return samples

    monkeypatch.setattr(inf.model, 'predict', predict)
    return inf


def test_reported_landmarks_follow_one_convention(doctored, bgr, tmp_path):
    pred = doctored(bgr, bboxes=[BOX], out_dir=str(tmp_path))[
        'predictions'][0]
    raw = doctored(bgr, bboxes=[BOX], return_datasamples=True)[
        'predictions'][0].pred_instances
    kpts = np.asarray(pred['keypoints'])
    vis = np.asarray(pred['keypoints_visible'])
    scores = np.asarray(pred['keypoint_scores'])
    assert kpts[:2].tolist() == [[0, 0], [0, 0]]
    assert vis[:2].tolist() == [0, 0] and scores[:2].tolist() == [0, 0]
    # the other landmarks: as the model gave them (found and inside)
    keep = raw.keypoints_visible[0, 2:] > 0
    np.testing.assert_allclose(kpts[2:][keep], raw.keypoints[0, 2:][keep],
                               rtol=0, atol=1e-4)
    assert (vis[2:] == keep).all()
    # landmarks.json reports the same
    with open(tmp_path / 'landmarks.json') as f:
        dump = json.load(f)['images'][0]
    assert dump['keypoints'] == pred['keypoints']
    assert dump['visible'] == pred['keypoints_visible']


def test_export_reports_what_the_inferencer_reports(doctored, tmp_path,
                                                    monkeypatch):
    # two images of the training split keep it to one forward pass
    with open(osp.join(FACE_DIR, 'uld_5pt_train.json')) as f:
        ann = json.load(f)
    keep = {im['id'] for im in ann['images'][:2]}
    ann['images'] = ann['images'][:2]
    ann['annotations'] = [a for a in ann['annotations']
                          if a['image_id'] in keep]
    small = tmp_path / 'two.json'
    small.write_text(json.dumps(ann))
    monkeypatch.setattr(doctored.cfg.train_dataloader.dataset, 'ann_file',
                        str(small))
    res = export_pseudo_labels(
        None, None, str(tmp_path / 'out'), split='train',
        inferencer=doctored, find_flip_pairs=False)
    with open(res['ann_file']) as f:
        coco = json.load(f)
    img_root = coco['info']['img_root']
    files = {im['id']: osp.join(img_root, im['file_name'])
             for im in coco['images']}
    anns = coco['annotations']
    assert len(anns) == 2
    preds = doctored(
        [files[a['image_id']] for a in anns],
        bboxes=[[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                 a['bbox'][1] + a['bbox'][3]] for a in anns],
        batch_size=2)['predictions']
    for ann, pred in zip(anns, preds):
        kp = np.asarray(ann['keypoints']).reshape(-1, 3)
        np.testing.assert_allclose(kp[:, :2], pred['keypoints'], atol=1e-3)
        assert ((kp[:, 2] > 0).astype(int) == pred['keypoints_visible']).all()
        assert kp[:2].tolist() == [[0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize('name', ['../escaped', 'a/b', '/tmp/x', '..', ''])
def test_export_name_cannot_leave_out_dir(inf, tmp_path, name):
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match='invalid dataset name'):
        export_pseudo_labels(
            None, None, str(out), split='train', inferencer=inf,
            dataset_name=name)
    assert list(tmp_path.iterdir()) == []


def test_folder_skips_unreadable_files_and_keeps_boxes_aligned(
        uld_checkpoint, tmp_path):
    """A folder with a corrupt PNG and a 0-byte JPEG: one warning naming
    each, the readable images are processed, and per-input boxes stay with
    their images. A single unreadable image and a text file named .mp4 are
    refused with the file named."""
    from mmengine.logging import MMLogger
    whole = ULDInferencer(
        uld_checkpoint['config'], uld_checkpoint['checkpoint'],
        device='cpu', roi='whole', cfg_options=uld_checkpoint['cfg_options'],
        show_progress=False)
    img = mmcv.imread(IMG)
    small = img[::4, ::4].copy()
    cv2.imwrite(str(tmp_path / 'a.png'), small)
    (tmp_path / 'b.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    (tmp_path / 'c.jpg').write_bytes(b'')
    cv2.imwrite(str(tmp_path / 'd.png'), small)
    logger = MMLogger.get_current_instance()
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        out = whole(str(tmp_path))
    finally:
        logger.removeHandler(handler)
    names = [osp.basename(p['img_path']) for p in out['predictions']]
    assert names == ['a.png', 'd.png']
    skipped = [m for m in seen if m.startswith('skipping')]
    assert len(skipped) == 2 and 'b.png' in skipped[0] and \
        'c.jpg' in skipped[1]
    # boxes given per input follow their own image past a skipped one
    files = [str(tmp_path / f) for f in ('a.png', 'b.png', 'd.png')]
    boxes = [[0, 0, 100, 100], [0, 0, 10, 10], [5, 5, 60, 70]]
    got = whole(files, bboxes=boxes)['predictions']
    assert got[1]['bbox'] == [5.0, 5.0, 60.0, 70.0]
    with pytest.raises(ValueError, match=r'cannot read image .*c\.jpg'):
        whole(str(tmp_path / 'c.jpg'))
    fake = tmp_path / 'clip.mp4'
    fake.write_text('not a video')
    with pytest.raises(ValueError, match=r'cannot read video .*clip\.mp4'):
        whole(str(fake))
