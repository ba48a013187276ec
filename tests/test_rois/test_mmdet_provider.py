# Copyright (c) mmuld contributors. All rights reserved.
import mmcv
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from mmuld.rois import (FallbackRoIProvider, MMDetRoIProvider,
                        WholeImageRoIProvider)


@pytest.fixture(scope='module')
def detector(rtmdet_config):
    # random weights: no checkpoint is downloaded
    return MMDetRoIProvider(rtmdet_config, None, device='cpu',
                            classes=('person', ), score_thr=0.3)


def test_detector_on_face_image(detector, face_image_path):
    from mmdet.apis import inference_detector
    img = mmcv.imread(face_image_path)
    assert detector.class_ids.tolist() == [0]
    detector.score_thr = 0.0
    try:
        roi = detector(img, dict(img_path=face_image_path))
    finally:
        detector.score_thr = 0.3
    # independent check against the raw detector output
    with DefaultScope.overwrite_default_scope('mmdet'):
        pred = inference_detector(detector.model, img).pred_instances
    boxes = pred.bboxes.numpy()
    scores = pred.scores.numpy()
    ok = (pred.labels.numpy() == 0) & (boxes[:, 2] > boxes[:, 0]) & (
        boxes[:, 3] > boxes[:, 1]) & (scores > 0)
    if ok.any():
        best = np.flatnonzero(ok)[np.argmax(scores[ok])]
        np.testing.assert_allclose(roi, boxes[best], rtol=1e-5)
    else:
        assert roi is None


def test_fallback_to_whole_image(detector, face_image_path):
    img = mmcv.imread(face_image_path)
    detector.score_thr = 1.0  # nothing can score above 1
    try:
        chain = FallbackRoIProvider([detector, WholeImageRoIProvider()])
        roi = chain(img, dict(img_path=face_image_path))
    finally:
        detector.score_thr = 0.3
    h, w = img.shape[:2]
    np.testing.assert_array_equal(roi, [0, 0, w, h])
    assert chain.counts['MMDetRoIProvider'] == 0
    assert chain.counts['WholeImageRoIProvider'] == 1
    assert chain.last_source == 'WholeImageRoIProvider'


def test_select_box(detector):
    boxes = np.array([[0, 0, 10, 10], [0, 0, 20, 20], [5, 5, 5, 30],
                      [1, 1, 8, 8]], np.float32)
    scores = np.array([0.5, 0.9, 0.99, 0.95], np.float32)
    labels = np.array([0, 2, 0, 0])
    # label 2 (car) filtered, zero-area box filtered -> box 3
    np.testing.assert_array_equal(
        detector.select_box(boxes, scores, labels), boxes[3])
    assert detector.select_box(boxes[:1], np.array([0.2]), labels[:1]) is None


def test_bad_classes(rtmdet_config):
    with pytest.raises(ValueError, match='face'):
        MMDetRoIProvider(rtmdet_config, classes=('face', ))
    with pytest.raises(ValueError, match='score_thr'):
        MMDetRoIProvider(rtmdet_config, score_thr=2.0)
