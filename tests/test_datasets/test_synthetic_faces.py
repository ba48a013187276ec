# Copyright (c) mmuld contributors. All rights reserved.
"""The face world: landmarks land on the drawn parts; files load."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mmuld.datasets.synthetic_faces import (FaceWorldConfig, make_face_world,
                                            render_face)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _inside(mask, pt, tol=0):
    x, y = int(round(pt[0])), int(round(pt[1]))
    lo_y, lo_x = max(0, y - tol), max(0, x - tol)
    return mask[lo_y:y + tol + 1, lo_x:x + tol + 1].max() > 0


@pytest.mark.parametrize('seed', range(12))
def test_points_land_on_the_drawn_parts(seed):
    img, kpts, info = render_face(
        np.random.default_rng(seed), FaceWorldConfig(), return_masks=True)
    m = info['masks']
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    # eye centres are the pupils: inside the eye whites, and dark
    for i in (0, 1):
        assert _inside(m['eyes'], kpts[i]), (seed, i)
        x, y = np.round(kpts[i]).astype(int)
        assert img[y, x].mean() < 90, (seed, i, img[y, x])
    assert _inside(m['nose'], kpts[2], tol=1)
    for i in (3, 4):  # mouth corners: on the lips' outline
        assert _inside(m['mouth'], kpts[i], tol=1)
    # the MAFL order: left (image-left of the face's own frame) first
    rot = np.deg2rad(info['rotation'])
    axis = np.array([np.cos(rot), np.sin(rot)])
    assert (kpts[1] - kpts[0]) @ axis > 0
    assert (kpts[4] - kpts[3]) @ axis > 0
    # all parts inside the head
    assert all(_inside(m['head'], p, tol=1) for p in kpts)


def test_ranges_change_the_pose_and_are_validated():
    cfg = FaceWorldConfig(rotation=0, yaw=0, translation=0, scale=(1, 1),
                          shape_jitter=0)
    _, a, _ = render_face(np.random.default_rng(1), cfg)
    _, b, _ = render_face(np.random.default_rng(2), cfg)
    np.testing.assert_allclose(a, b, atol=1e-6)  # same geometry
    _, c, info = render_face(np.random.default_rng(2), FaceWorldConfig())
    assert np.abs(c - a).max() > 1.0
    with pytest.raises(ValueError, match='rotation'):
        FaceWorldConfig(rotation=-1).validate()
    with pytest.raises(ValueError, match='scale'):
        FaceWorldConfig(scale=(1.2, 1.0)).validate()


def test_face_world_files_load_in_uld_face_dataset(tmp_path):
    from mmuld.datasets import ULDFaceDataset
    from mmuld.utils import register_all_modules
    register_all_modules()
    paths = make_face_world(str(tmp_path), num_train=5, num_test=3, seed=7)
    ds = ULDFaceDataset(data_root=str(tmp_path),
                        ann_file='annotations/train.json', uld_split='train',
                        pipeline=[])
    assert len(ds) == 5
    info = ds.get_data_info(0)
    assert info['keypoints'].shape == (1, 5, 2)
    # mmpose clips the whole-image box to the last pixel centre
    np.testing.assert_allclose(info['bbox'][0], [0, 0, 127, 127])
    assert ds.metainfo['num_keypoints'] == 5
    # train and test come from disjoint streams: no identical image
    tr = {osp.basename(p): cv2.imread(str(p)) for p in
          (tmp_path / 'images').glob('train_*.png')}
    te = [cv2.imread(str(p)) for p in (tmp_path / 'images').glob('test_*')]
    assert len(tr) == 5 and len(te) == 3
    assert not any(np.array_equal(a, b) for a in tr.values() for b in te)
    data = json.load(open(paths['test']))
    assert data['categories'][0]['keypoints'][:2] == ['left_eye',
                                                      'right_eye']
    # same seed, same world
    other = make_face_world(str(tmp_path / 'again'), 5, 3, seed=7)
    assert json.load(open(other['train'])) == json.load(open(paths['train']))


def test_wide_yaw_hides_the_far_parts():
    """At +-75 degrees of yaw the far eye and mouth corner turn behind the
    head and their points are marked hidden (what of them faces away is
    not drawn); at the default +-30 degrees nothing is hidden."""
    hidden = 0
    for seed in range(150):
        _, kpts, info = render_face(
            np.random.default_rng(seed),
            FaceWorldConfig(yaw=75, rotation=0), return_masks=True)
        vis = info['visible']
        if abs(info['yaw']) > 70:
            far = (1, 4) if info['yaw'] > 0 else (0, 3)
            assert not vis[list(far)].any(), (seed, info['yaw'], vis)
            hidden += 1
        assert vis[2]  # the nose tip sticks out towards the viewer
    assert hidden >= 3
    for seed in range(20):
        _, _, info = render_face(np.random.default_rng(seed))
        assert info['visible'].all()


def test_hidden_points_are_labelled_not_visible(tmp_path):
    make_face_world(str(tmp_path), num_train=30, num_test=2, seed=1,
                    cfg=FaceWorldConfig(yaw=80))
    data = json.load(open(tmp_path / 'annotations' / 'train.json'))
    vis = np.array([a['keypoints'][2::3] for a in data['annotations']])
    assert (vis == 1).any() and (vis == 2).any()


def test_cli_writes_the_world_and_refuses_bad_ranges(tmp_path):
    tool = osp.join(ROOT, 'tools', 'misc', 'make_synthetic_world.py')
    out = subprocess.run(
        [sys.executable, tool, 'face', str(tmp_path / 'w'), '--num-train',
         '2', '--num-test', '1', '--rotation', '10', '--clutter', '0', '0'],
        capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    cfg = json.load(open(tmp_path / 'w' / 'face_world.json'))
    assert cfg['rotation'] == 10 and cfg['clutter'] == [0, 0]
    assert cfg['category'] == 'face'
    bad = subprocess.run(
        [sys.executable, tool, 'face', str(tmp_path / 'x'), '--yaw', '95'],
        capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and 'yaw' in bad.stderr
    cats = subprocess.run(
        [sys.executable, tool, 'cat', str(tmp_path / 'c'), '--num-train',
         '2', '--num-test', '1', '--stripes-prob', '1'],
        capture_output=True, text=True, cwd=ROOT)
    assert cats.returncode == 0, cats.stderr
    data = json.load(open(tmp_path / 'c' / 'annotations' / 'test.json'))
    names = data['categories'][0]['keypoints']
    assert names[3:] == ['left_ear_tip', 'right_ear_tip']
