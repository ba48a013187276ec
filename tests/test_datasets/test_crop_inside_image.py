# Copyright (c) mmuld contributors. All rights reserved.
"""CropInsideImage: inputs carry image pixels only, no padding."""
import numpy as np
from mmcv.transforms import Compose

from mmuld.utils import register_all_modules


def _run(img, bbox, padding, with_crop):
    register_all_modules()
    from mmuld.registry import TRANSFORMS
    steps = [dict(type='GetBBoxCenterScale', padding=padding)]
    if with_crop:
        steps.append(dict(type='CropInsideImage', input_size=(32, 32)))
    steps.append(dict(type='TopdownAffine', input_size=(32, 32)))
    pipe = Compose([TRANSFORMS.build(s) for s in steps])
    res = dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
               bbox=np.array([bbox], np.float32),
               bbox_score=np.ones(1, np.float32))
    return pipe(res)


def test_no_black_border_on_whole_image_boxes():
    # a non-square image, bright everywhere: any zero pixel is padding
    img = np.full((60, 90, 3), 200, np.uint8)
    plain = _run(img, [0, 0, 90, 60], 1.25, with_crop=False)['img']
    assert (plain == 0).all(-1).mean() > 0.2  # mmpose pads
    out = _run(img, [0, 0, 90, 60], 1.25, with_crop=True)
    assert (out['img'] == 0).all(-1).sum() == 0
    # the crop is the largest centred square inside the image
    scale = np.reshape(out['input_scale'], -1)
    center = np.reshape(out['input_center'], -1)
    np.testing.assert_allclose(scale, [60, 60], atol=1e-4)
    np.testing.assert_allclose(center, [45, 30], atol=1e-4)


def test_boxes_near_the_edge_are_moved_inside():
    img = np.full((100, 100, 3), 200, np.uint8)
    out = _run(img, [0, 0, 40, 40], 1.25, with_crop=True)
    c = np.reshape(out['input_center'], -1)
    s = np.reshape(out['input_scale'], -1)
    assert (c - s / 2 >= -1e-4).all() and (c + s / 2 <= 100 + 1e-4).all()
    np.testing.assert_allclose(s, [50, 50], atol=1e-4)  # size kept
    assert (out['img'] == 0).all(-1).sum() == 0
