# Copyright (c) mmuld contributors. All rights reserved.
import numpy as np
import pytest
from mmengine.logging import MMLogger

from mmuld.rois import (ROI_PROVIDERS, AnnotationRoIProvider,
                        BaseRoIProvider, FallbackRoIProvider,
                        WholeImageRoIProvider, build_roi_provider,
                        sanitize_roi)


class ScriptedProvider(BaseRoIProvider):
    """Returns the box stored under ``meta[key]`` (None if absent)."""

    def __init__(self, key, name=None):
        super().__init__(name)
        self.key = key

    def get_roi(self, img, meta):
        return meta.get(self.key)


def test_sanitize_roi():
    np.testing.assert_array_equal(sanitize_roi([1, 2, 3, 4]), [1, 2, 3, 4])
    assert sanitize_roi([1, 2, 3, 4]).dtype == np.float32
    assert sanitize_roi(None) is None
    assert sanitize_roi([5, 5, 5, 9]) is None  # zero width
    assert sanitize_roi([5, 9, 8, 2]) is None  # negative height
    assert sanitize_roi([0, 0, np.nan, 3]) is None
    np.testing.assert_array_equal(
        sanitize_roi([-5, 2, 50, 80], (60, 40, 3), clip=True), [0, 2, 40, 60])
    assert sanitize_roi([50, 2, 60, 8], (60, 40, 3), clip=True) is None
    with pytest.raises(ValueError, match='4 values'):
        sanitize_roi([1, 2, 3])


def test_whole_image():
    img = np.zeros((30, 50, 3), np.uint8)
    p = WholeImageRoIProvider()
    np.testing.assert_array_equal(p(img, {}), [0, 0, 50, 30])
    np.testing.assert_array_equal(
        p(None, dict(width=7, height=9)), [0, 0, 7, 9])
    with pytest.raises(ValueError, match='width'):
        p(None, {})


def test_annotation():
    img = np.zeros((100, 200, 3), np.uint8)
    xywh = AnnotationRoIProvider()
    np.testing.assert_allclose(
        xywh(img, dict(bbox=[10, 20, 30, 40])), [10, 20, 40, 60])
    # several boxes: the largest, clipped to the image
    np.testing.assert_allclose(
        xywh(img, dict(bbox=[[0, 0, 5, 5], [150, 50, 100, 100]])),
        [150, 50, 200, 100])
    xyxy = AnnotationRoIProvider(bbox_key='box', bbox_format='xyxy')
    np.testing.assert_allclose(
        xyxy(img, dict(box=np.array([[10, 20, 30, 40]]))), [10, 20, 30, 40])
    assert xyxy(img, dict(box=[10, 20, 10, 40])) is None  # zero area
    assert xyxy(img, {}) is None
    with pytest.raises(ValueError, match='bbox_format'):
        AnnotationRoIProvider(bbox_format='cxcywh')


def test_fallback_counts_and_logs(tmp_path):
    log_file = tmp_path / 'rois.log'
    MMLogger.get_instance('test_rois_fallback', log_file=str(log_file))
    chain = FallbackRoIProvider([
        ScriptedProvider('det', name='det'),
        dict(type='AnnotationRoIProvider', bbox_format='xyxy'),
    ])
    assert [p.name for p in chain.providers] == ['det',
                                                 'AnnotationRoIProvider']
    img = np.zeros((100, 100, 3), np.uint8)
    metas = [
        dict(img_path='a.jpg', det=[1, 1, 9, 9], bbox=[0, 0, 50, 50]),
        dict(img_path='b.jpg', det=[4, 4, 4, 9], bbox=[0, 0, 50, 50]),
        dict(img_path='c.jpg', bbox=[2, 2, 20, 20]),
        dict(img_path='d.jpg'),
    ]
    out, sources = [], []
    for m in metas:
        out.append(chain(img, m))
        sources.append(chain.last_source)
    np.testing.assert_array_equal(out[0], [1, 1, 9, 9])
    # degenerate detection -> treated as no detection -> annotation
    np.testing.assert_array_equal(out[1], [0, 0, 50, 50])
    np.testing.assert_array_equal(out[2], [2, 2, 20, 20])
    assert out[3] is None
    assert sources == ['det', 'AnnotationRoIProvider',
                       'AnnotationRoIProvider', None]
    assert dict(chain.counts) == {
        'det': 1, 'AnnotationRoIProvider': 2, 'none': 1}
    assert chain.missed == ['d.jpg']
    log = log_file.read_text()
    assert 'b.jpg: no RoI from det' in log
    assert 'd.jpg: no provider found a RoI' in log
    chain.reset()
    assert sum(chain.counts.values()) == 0 and chain.missed == []


def test_fallback_with_whole_image_never_misses():
    chain = build_roi_provider(
        dict(
            type='FallbackRoIProvider',
            providers=[
                dict(type='AnnotationRoIProvider'),
                dict(type='WholeImageRoIProvider')
            ]))
    img = np.zeros((10, 20, 3), np.uint8)
    np.testing.assert_array_equal(chain(img, {}), [0, 0, 20, 10])
    assert chain.counts['WholeImageRoIProvider'] == 1
    assert chain.counts['none'] == 0


def test_registry_and_bad_config():
    assert ROI_PROVIDERS.get('MMDetRoIProvider') is not None
    with pytest.raises(ValueError, match='type'):
        build_roi_provider(dict(bbox_format='xywh'))
    with pytest.raises(ValueError, match='at least one'):
        FallbackRoIProvider([])
    with pytest.raises(ValueError, match='unique'):
        FallbackRoIProvider(
            [WholeImageRoIProvider(), WholeImageRoIProvider()])
