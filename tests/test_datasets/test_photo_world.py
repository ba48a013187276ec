# Copyright (c) mmuld contributors. All rights reserved.
"""A world drawn from the real face photographs of data/face_samples."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mmuld.datasets.photo_world import (PhotoWorldConfig, load_sources,
                                        make_photo_world)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FACES = osp.join(ROOT, 'data', 'face_samples')
ANNS = [osp.join(FACES, f'uld_5pt_{s}.json') for s in ('train', 'test')]


def test_landmarks_follow_the_warp_and_sources_are_disjoint(tmp_path):
    paths = make_photo_world(str(tmp_path), ANNS, [FACES, FACES],
                             num_train=24, num_test=8, seed=2,
                             cfg=PhotoWorldConfig(image_size=96))
    sources, names = load_sources(ANNS, [FACES, FACES])
    assert len(sources) == 12 and names[0] == 'left_eye'
    by_path = {s['path']: s for s in sources}
    used = {}
    for split in ('train', 'test'):
        data = json.load(open(paths[split]))
        assert data['categories'][0]['keypoints'] == names
        used[split] = {a['source'] for a in data['annotations']}
        for ann in data['annotations'][:6]:
            img = cv2.imread(str(tmp_path / data['images'][ann['id'] - 1][
                'file_name']))
            assert img.shape == (96, 96, 3)
            kp = np.array(ann['keypoints']).reshape(-1, 3)
            src = by_path[ann['source']]
            # a similarity keeps distance ratios: the eye-to-mouth over the
            # eye-to-eye distance is the source's

            def ratio(p):
                return (np.linalg.norm(p[0, :2] - p[3, :2]) /
                        np.linalg.norm(p[0, :2] - p[1, :2]))
            assert ratio(kp) == pytest.approx(ratio(src['keypoints']),
                                              rel=1e-3)
    # the test photographs are never used for training
    assert used['train'] and used['test']
    assert not used['train'] & used['test']
    assert len(used['test']) == 4


def test_cli_and_bad_input(tmp_path):
    tool = osp.join(ROOT, 'tools', 'misc', 'make_photo_world.py')
    out = subprocess.run(
        [sys.executable, tool, str(tmp_path / 'w'), '--ann', *ANNS,
         '--img-root', FACES, FACES, '--num-train', '3', '--num-test', '2'],
        capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    meta = json.load(open(tmp_path / 'w' / 'photo_world.json'))
    assert meta['train_sources'] == 8 and meta['test_sources'] == 4
    bad = subprocess.run(
        [sys.executable, tool, str(tmp_path / 'x'), '--ann', ANNS[0],
         '--img-root', FACES, FACES],
        capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and 'one --img-root per --ann' in bad.stderr
    with pytest.raises(ValueError, match='context'):
        PhotoWorldConfig(context=0.5).validate()
