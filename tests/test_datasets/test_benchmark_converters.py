# Copyright (c) mmuld contributors. All rights reserved.
"""Converters + benchmark datasets on small synthetic release folders."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmuld.datasets import (AFLWULDDataset, CatHeadsDataset, LS3DDataset,
                            MAFLDataset)
from mmuld.utils import register_all_modules

TOOLS = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'dataset_converters')
PIPELINE = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=(32, 32)),
    dict(type='PackPoseInputs', meta_keys=('img_path', 'uld_split'))
]
FACE5 = np.array([[70., 110.], [108., 110.], [89., 130.], [74., 150.],
                  [104., 150.]])


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(TOOLS, f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True, scope='module')
def _register():
    register_all_modules()


def _img(path, size=(178, 218)):
    Image.new('RGB', size, (90, 60, 30)).save(path)


def test_mafl(tmp_path):
    celeba, mafl, out = tmp_path / 'celeba', tmp_path / 'mafl', tmp_path / 'o'
    (celeba / 'img_align_celeba').mkdir(parents=True)
    mafl.mkdir()
    names = [f'{i:06d}.jpg' for i in range(1, 7)]
    lines = ['6', 'lefteye_x ...']
    for i, n in enumerate(names):
        _img(celeba / 'img_align_celeba' / n)
        p = FACE5 + i
        lines.append(n + ' ' + ' '.join(str(int(v)) for v in p.reshape(-1)))
    (celeba / 'list_landmarks_align_celeba.txt').write_text('\n'.join(lines))
    (celeba / 'list_eval_partition.txt').write_text('\n'.join(
        f'{n} {0 if i < 5 else 2}' for i, n in enumerate(names)))
    (mafl / 'training.txt').write_text('\n'.join(names[:3]))
    (mafl / 'testing.txt').write_text('\n'.join(names[3:5]))
    counts = _tool('mafl_to_coco').convert(str(celeba), str(mafl), str(out))
    # CelebA train partition (first 5) minus MAFL test (2) = 3
    assert counts == dict(celeba_train=3, mafl_train=3, mafl_test=2)
    ds = MAFLDataset(
        ann_file=str(out / 'mafl_test.json'),
        data_prefix=dict(img=str(celeba / 'img_align_celeba') + '/'),
        uld_split='train',  # json field wins
        pipeline=PIPELINE)
    assert len(ds) == 2 and ds.metainfo['num_keypoints'] == 5
    s = ds[0]['data_samples']
    assert s.metainfo['uld_split'] == 'test'
    np.testing.assert_allclose(s.gt_instances.keypoints[0], FACE5 + 3)


def test_aflw_m(tmp_path):
    (tmp_path / 'img').mkdir()
    lines = []
    for i in range(3):
        _img(tmp_path / 'img' / f'{i}.jpg', (200, 240))
        p = FACE5 + i
        lines.append(f'{i}.jpg ' + ' '.join(map(str, p[:, 0])) + ' ' +
                     ' '.join(map(str, p[:, 1])) + ' 1 2 2 3')
    (tmp_path / 'train.txt').write_text('\n'.join(lines))
    (tmp_path / 'yaw.csv').write_text('0.jpg,-45.0\n2.jpg,10')
    mod = _tool('aflw_m_to_coco')
    n = mod.convert(
        str(tmp_path / 'img'), str(tmp_path / 'train.txt'),
        str(tmp_path / 'aflw.json'), 'train', str(tmp_path / 'yaw.csv'))
    assert n == 3
    ds = AFLWULDDataset(
        ann_file=str(tmp_path / 'aflw.json'),
        data_prefix=dict(img=str(tmp_path / 'img') + '/'),
        pipeline=PIPELINE)
    info = ds.get_data_info(0)
    np.testing.assert_allclose(info['keypoints'][0], FACE5)
    assert info['yaw'] == -45.0 and info['uld_split'] == 'train'
    assert ds[2]['inputs'].shape == (3, 32, 32)
    with pytest.raises(FileNotFoundError):
        mod.convert(str(tmp_path), str(tmp_path / 'nope.txt'),
                    str(tmp_path / 'x.json'), 'test')


def test_catheads(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ('CAT_00', 'CAT_06'):
        (tmp_path / folder).mkdir()
        for i in range(2):
            img = tmp_path / folder / f'{i}.jpg'
            _img(img, (120, 100))
            pts = rng.uniform(20, 80, (9, 2)).round()
            (tmp_path / folder / f'{i}.jpg.cat').write_text(
                '9 ' + ' '.join(str(int(v)) for v in pts.reshape(-1)) + ' ')
    mod = _tool('catheads_to_coco')
    mod.main([str(tmp_path), str(tmp_path / 'out'), '--train-folders',
              'CAT_00', '--test-folders', 'CAT_06'])
    ds = CatHeadsDataset(
        ann_file=str(tmp_path / 'out' / 'catheads_test.json'),
        data_prefix=dict(img=str(tmp_path) + '/'),
        pipeline=PIPELINE)
    assert len(ds) == 2 and ds.metainfo['num_keypoints'] == 9
    assert ds.metainfo['flip_indices'][0] == 1
    assert ds[0]['data_samples'].metainfo['uld_split'] == 'test'
    bad = tmp_path / 'bad.cat'
    bad.write_text('4 1 2 3 4')
    with pytest.raises(ValueError, match='9-point'):
        mod.read_cat_file(str(bad))


def test_ls3d(tmp_path):
    from scipy.io import savemat
    rng = np.random.default_rng(0)
    lp, ls3d = tmp_path / '300W_LP', tmp_path / 'LS3D-W'
    (lp / 'AFW').mkdir(parents=True)
    (lp / 'landmarks' / 'AFW').mkdir(parents=True)
    (lp / 'AFW_Flip').mkdir()
    for i in range(3):
        _img(lp / 'AFW' / f'a_{i}.jpg', (450, 450))
        savemat(str(lp / 'landmarks' / 'AFW' / f'a_{i}_pts.mat'),
                dict(pts_3d=rng.uniform(100, 300, (68, 2))))
    _img(lp / 'AFW_Flip' / 'skip.jpg', (450, 450))
    (ls3d / '[30-60]').mkdir(parents=True)
    _img(ls3d / '[30-60]' / 'x.jpg', (300, 300))
    np.save(ls3d / '[30-60]' / 'x.npy', rng.uniform(50, 250, (68, 2)))
    _img(ls3d / '[30-60]' / 'y.jpg', (300, 300))
    pts = rng.uniform(50, 250, (68, 2))
    (ls3d / '[30-60]' / 'y.pts').write_text(
        'version: 1\nn_points: 68\n{\n' +
        '\n'.join(f'{x} {y}' for x, y in pts) + '\n}\n')
    out = tmp_path / 'out'
    _tool('ls3d_to_coco').main(
        [str(lp), str(ls3d), str(out), '--n-regressor', '2'])
    train = LS3DDataset(
        ann_file=str(out / 'ls3d_regressor.json'),
        data_prefix=dict(img=str(lp) + '/'),
        pipeline=PIPELINE)
    assert len(train) == 2 and train.metainfo['num_keypoints'] == 68
    test = LS3DDataset(
        ann_file=str(out / 'ls3d_test.json'),
        data_prefix=dict(img=str(ls3d) + '/'),
        pipeline=PIPELINE)
    assert len(test) == 2
    raw = test.get_data_info(1)['raw_ann_info']
    assert raw['yaw_range'] == [30, 60]
    np.testing.assert_allclose(test.get_data_info(1)['keypoints'][0], pts,
                               rtol=1e-5)
    assert test[0]['data_samples'].metainfo['uld_split'] == 'test'
    five = LS3DDataset(
        ann_file=str(out / 'ls3d_test.json'),
        data_prefix=dict(img=str(ls3d) + '/'),
        landmark_subset='mafl5')
    assert five.get_data_info(0)['keypoints'].shape == (1, 5, 2)
