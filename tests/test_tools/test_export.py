# Copyright (c) mmuld contributors. All rights reserved.
"""tools/export_pseudo_labels.py: COCO json + dataset_info for mmpose."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.datasets import CocoDataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py')
FACE_DIR = osp.join(ROOT, 'data', 'face_samples')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'export_pseudo_labels',
        osp.join(ROOT, 'tools', 'export_pseudo_labels.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def exported(tmp_path_factory, trained_dldpp):
    """The session's trained demo model, exported by the tool."""
    opts = trained_dldpp['cfg_options']
    work = tmp_path_factory.mktemp('export')
    out_dir = str(work / 'labels')
    argv = [CONFIG, trained_dldpp['checkpoint'], '--out-dir', out_dir,
            '--split', 'train', '--cfg-options'
            ] + [f'{k}={v}' for k, v in opts.items()]
    res = _load_tool().main(argv)
    return res, trained_dldpp['num_landmarks'], out_dir


# landmarks at fixed input pixels, mirror-symmetric about the crop's axis
# (u -> 64 - u for the 64-px input): pairs 0-1, 2-3, 4-5, 6-7; 8, 9 centre
SYMMETRIC = [(20., 20.), (44., 20.), (15., 40.), (49., 40.), (25., 50.),
             (39., 50.), (10., 30.), (54., 30.), (32., 25.), (32., 45.)]
SYMMETRIC_FLIP = [1, 0, 3, 2, 5, 4, 7, 6, 8, 9]


@pytest.fixture(scope='module')
def exported_symmetric(tmp_path_factory, trained_dldpp):
    """Export of a model whose landmarks are mirror pairs by construction:
    the flip partners are known."""
    from mmuld.models import ULDEstimator

    def assign(self, out):
        b = out['keypoints'].shape[0]
        kp = torch.tensor(SYMMETRIC).expand(b, -1, -1).clone()
        k = kp.shape[1]
        return dict(keypoints=kp, scores=torch.ones(b, k),
                    visible=torch.ones(b, k),
                    descriptors=torch.zeros(b, k, 2),
                    pose_labels=torch.zeros(b, dtype=torch.long))

    opts = trained_dldpp['cfg_options']
    out_dir = str(tmp_path_factory.mktemp('export_sym') / 'labels')
    argv = [CONFIG, trained_dldpp['checkpoint'], '--out-dir', out_dir,
            '--split', 'train', '--cfg-options'
            ] + [f'{k}={v}' for k, v in opts.items()]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ULDEstimator, 'assign_landmarks', assign)
        res = _load_tool().main(argv)
    return res


def test_coco_json_format(exported):
    res, k, out_dir = exported
    with open(res['ann_file']) as f:
        coco = json.load(f)
    with open(osp.join(FACE_DIR, 'uld_5pt_train.json')) as f:
        src = json.load(f)
    assert len(coco['images']) == len(src['images']) == res['num_images']
    assert coco['categories'][0]['keypoints'] == [f'lm{i}' for i in range(k)]
    assert coco['categories'][0]['name'] == 'face'
    src_box = {im['file_name']: a['bbox'] for im, a in zip(
        src['images'], src['annotations'])}
    img_by_id = {im['id']: im for im in coco['images']}
    for ann in coco['annotations']:
        kp = np.asarray(ann['keypoints']).reshape(-1, 3)
        assert kp.shape == (k, 3)
        assert set(kp[:, 2].tolist()) <= {0, 2}
        assert ann['num_keypoints'] == int((kp[:, 2] > 0).sum()) > 0
        assert np.all(kp[kp[:, 2] == 0, :2] == 0)
        img = img_by_id[ann['image_id']]
        assert osp.isfile(osp.join(res['img_root'], img['file_name']))
        # the RoI is the dataset's annotation box (COCO xywh)
        np.testing.assert_allclose(ann['bbox'], src_box[img['file_name']],
                                   atol=1e-3)
        assert ann['uld_split'] == 'train'


def test_loads_in_mmpose_coco_dataset(exported):
    res, k, _ = exported
    ds = CocoDataset(
        data_root='',
        ann_file=res['ann_file'],
        data_prefix=dict(img=res['img_root'] + '/'),
        metainfo=dict(from_file=res['info_file']),
        pipeline=[],
        test_mode=False)
    assert ds.metainfo['num_keypoints'] == k
    assert ds.metainfo['dataset_name'] == 'uld_pseudo_labels'
    assert len(ds) == res['num_images']
    item = ds[0]
    assert item['keypoints'].shape == (1, k, 2)
    assert osp.isfile(item['img_path'])
    flip = ds.metainfo['flip_indices']
    assert flip == res['flip_indices']
    assert all(flip[flip[i]] == i for i in range(k))
    pairs = {tuple(sorted(p)) for p in ds.metainfo['flip_pairs']}
    assert pairs == {tuple(p) for p in res['flip_pairs']}
    info = Config.fromfile(res['info_file']).dataset_info
    for i in range(k):
        kp = info.keypoint_info[i]
        assert kp['name'] == f'lm{i}' and kp['id'] == i
        assert kp['swap'] == ('' if flip[i] == i else f'lm{flip[i]}')
    assert info.sigmas == [0.025] * k and info.joint_weights == [1.0] * k
    assert info.skeleton_info == {}


def test_flip_pairs_match_the_distances(exported):
    res, k, _ = exported
    d = np.where(np.isnan(res['flip_distance']), np.inf,
                 res['flip_distance'])
    sym = 0.5 * (d + d.T)
    for i, j in res['flip_pairs']:
        # a pair is only formed below the default 0.2 threshold
        assert sym[i, j] <= 0.2
    assert res['flip_count'].max() <= res['num_images']


def test_mirror_symmetric_landmarks_give_their_flip_pairs(
        exported_symmetric):
    res = exported_symmetric
    assert res['flip_indices'] == SYMMETRIC_FLIP
    assert res['flip_pairs'] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    d = res['flip_distance']
    for i, j in res['flip_pairs']:
        # mirrored partners land on each other (RoI-normalised distance)
        assert d[i, j] < 0.02 and d[j, i] < 0.02, d
        assert d[i, i] > 0.1, d
    assert (res['flip_count'] == res['num_images']).all()
    info = Config.fromfile(res['info_file']).dataset_info
    assert info.keypoint_info[0]['swap'] == 'lm1'
    assert info.keypoint_info[8]['swap'] == ''


def test_landmarks_lie_inside_the_crop(exported):
    """Exported landmarks: inside the padded crop of their box, at least
    the NMS border away from its edges, spread over the face."""
    res, k, _ = exported
    with open(res['ann_file']) as f:
        coco = json.load(f)
    for ann in coco['annotations']:
        kp = np.asarray(ann['keypoints'], dtype=float).reshape(-1, 3)
        x, y, w, h = ann['bbox']
        side = 1.25 * max(w, h)
        half = side / 2 - side * 5 / 64
        pts = kp[kp[:, 2] > 0, :2]
        assert np.all(np.abs(pts - [x + w / 2, y + h / 2]) <= half), (pts,
                                                                      x, y)
        assert np.all(pts.std(0) > side / 64), pts


def test_bad_split(exported):
    from mmuld.apis import collect_samples
    with pytest.raises(ValueError, match='split'):
        collect_samples(Config.fromfile(CONFIG), 'val')
