# Copyright (c) mmuld contributors. All rights reserved.
"""The cat world: its points land on the drawn parts."""
import numpy as np
import pytest

from mmuld.datasets.synthetic_cats import CatWorldConfig, render_cat
from mmuld.datasets.synthetic_worlds import WORLDS, make_world


def _inside(mask, pt, tol=0):
    x, y = int(round(pt[0])), int(round(pt[1]))
    return mask[max(0, y - tol):y + tol + 1,
                max(0, x - tol):x + tol + 1].max() > 0


@pytest.mark.parametrize('seed', range(12))
def test_points_land_on_the_drawn_parts(seed):
    img, kpts, info = render_cat(np.random.default_rng(seed),
                                 return_masks=True)
    m = info['masks']
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    for i in (0, 1):  # eye centres: on the eyes, on the dark slit pupil
        assert _inside(m['eyes'], kpts[i]), (seed, i)
        x, y = np.round(kpts[i]).astype(int)
        assert img[y, x].mean() < 90, (seed, i, img[y, x])
    assert _inside(m['nose'], kpts[2], tol=1)
    for i in (3, 4):  # ear tips: the tip of the ear, above the head
        assert _inside(m['ears'], kpts[i], tol=2), (seed, i)
        assert not _inside(m['head'], kpts[i], tol=1), (seed, i)
    rot = np.deg2rad(info['rotation'])
    axis = np.array([np.cos(rot), np.sin(rot)])
    assert (kpts[1] - kpts[0]) @ axis > 0  # left eye first
    assert (kpts[4] - kpts[3]) @ axis > 0
    assert ((kpts >= 0) & (kpts <= 127)).all()


def test_ranges_are_validated_and_worlds_are_listed(tmp_path):
    with pytest.raises(ValueError, match='stripes_prob'):
        CatWorldConfig(stripes_prob=2).validate()
    assert set(WORLDS) >= {'face', 'cat'}
    with pytest.raises(ValueError, match='unknown world category'):
        make_world('horse', str(tmp_path))
    paths = make_world('cat', str(tmp_path / 'c'), 3, 2, seed=4)
    again = make_world('cat', str(tmp_path / 'd'), 3, 2, seed=4)
    assert open(paths['train']).read() == open(again['train']).read()
