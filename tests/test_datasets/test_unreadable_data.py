# Copyright (c) mmuld contributors. All rights reserved.
"""Missing / corrupt images and malformed annotation files: one clear
error naming the folder or file, or one warning per skipped file."""
import json
import os.path as osp
import shutil
import time

import pytest

from mmuld.datasets import ULDFaceDataset
from mmuld.datasets.transforms import SafeLoadImage
from mmuld.utils import register_all_modules

ROOT = osp.abspath(
    osp.join(osp.dirname(__file__), '..', '..', 'data', 'face_samples'))
TRAIN = osp.join(ROOT, 'uld_5pt_train.json')
PIPELINE = [
    dict(type='SafeLoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=(32, 32)),
    dict(type='PackPoseInputs', meta_keys=('img_path', 'sample_idx')),
]


@pytest.fixture(autouse=True, scope='module')
def _register():
    register_all_modules()


@pytest.fixture
def data(tmp_path):
    """A copy of data/face_samples that the test may damage."""
    dst = tmp_path / 'face_samples'
    shutil.copytree(ROOT, dst)
    SafeLoadImage.skipped.clear()
    SafeLoadImage.errors.clear()
    return dst


def _files(json_file):
    with open(json_file) as f:
        return [im['file_name'] for im in json.load(f)['images']]


def test_all_images_missing_stops_at_build_naming_the_folder():
    t0 = time.time()
    with pytest.raises(FileNotFoundError) as e:
        ULDFaceDataset(ann_file=TRAIN, data_root='/nonexistent/',
                       pipeline=PIPELINE)
    msg = str(e.value)
    assert '8 of the 8 images' in msg and '/nonexistent/' in msg
    assert 'uld_5pt_train.json' in msg
    assert time.time() - t0 < 5


def test_a_few_missing_images_are_skipped_with_one_warning_each(
        data, monkeypatch):
    gone = _files(data / 'uld_5pt_train.json')[2]
    (data / gone).unlink()
    logged = []
    import mmengine.logging
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, *a, **k: logged.append(msg))
    ds = ULDFaceDataset(ann_file='uld_5pt_train.json', data_root=str(data),
                        pipeline=PIPELINE)
    assert len(ds) == 7
    assert all(ds.get_data_info(i)['img_path'] != str(data / gone)
               for i in range(7))
    per_file = [m for m in logged if m.startswith('skipping missing')]
    assert per_file == [f'skipping missing image {data / gone}']
    assert any('1 of the 8 images' in m for m in logged)
    # in test mode a missing image is an error (results would be partial)
    with pytest.raises(FileNotFoundError, match='1 of the 8 images'):
        ULDFaceDataset(ann_file='uld_5pt_train.json', data_root=str(data),
                       pipeline=PIPELINE, test_mode=True)


def test_corrupt_image_warns_once_not_per_fetch(data, monkeypatch):
    bad = data / _files(data / 'uld_5pt_train.json')[0]
    bad.write_bytes(b'not an image')
    logged = []
    from mmuld.datasets.transforms import safe_load_image
    monkeypatch.setattr(safe_load_image, 'print_log',
                        lambda msg, *a, **k: logged.append(msg))
    ds = ULDFaceDataset(ann_file='uld_5pt_train.json', data_root=str(data),
                        pipeline=PIPELINE)
    for _ in range(5):
        assert ds.prepare_data(0) is None
    assert len(logged) == 1 and str(bad) in logged[0]
    assert '1 unreadable image(s)' in logged[0]
    assert SafeLoadImage.skipped[str(bad)] == 5
    # training goes on with another sample
    assert ds[0]['data_samples'].img_path != str(bad)


def test_corrupt_test_image_is_an_error_naming_it(data):
    bad = data / _files(data / 'uld_5pt_test.json')[1]
    bad.write_bytes(b'')
    ds = ULDFaceDataset(ann_file='uld_5pt_test.json', data_root=str(data),
                        pipeline=PIPELINE, uld_split='test', test_mode=True)
    with pytest.raises(ValueError, match=f'cannot read test image {bad}'):
        ds[1]
    assert ds[0]['inputs'].shape[-2:] == (32, 32)


def test_corrupt_training_image_is_skipped_in_evaluation(data, monkeypatch):
    """The training split of an evaluation skips an undecodable image with
    one warning, as training does, instead of stopping the evaluation."""
    logged = []
    monkeypatch.setattr('mmengine.logging.print_log',
                        lambda msg, *a, **k: logged.append(msg))
    names = _files(data / 'uld_5pt_train.json')
    (data / names[2]).write_bytes(b'\x89PNG truncated')
    ds = ULDFaceDataset(ann_file='uld_5pt_train.json', data_root=str(data),
                        pipeline=PIPELINE, uld_split='train', test_mode=True)
    assert len(ds) == len(names) - 1
    assert all(ds[i]['data_samples'].img_path != str(data / names[2])
               for i in range(len(ds)))
    skips = [m for m in logged if m.startswith('skipping')]
    assert len(skips) == 1 and names[2] in skips[0]


def test_all_training_images_corrupt_stops_early(data):
    for name in _files(data / 'uld_5pt_train.json'):
        (data / name).write_bytes(b'garbage')
    ds = ULDFaceDataset(ann_file='uld_5pt_train.json', data_root=str(data),
                        pipeline=PIPELINE)
    t0 = time.time()
    with pytest.raises(RuntimeError, match='5 of the 8 images under .*'
                       'cannot be read'):
        ds[0]
    assert time.time() - t0 < 5


@pytest.mark.parametrize('meta', [True, False])
def test_malformed_annotation_json_names_the_file(tmp_path, meta):
    bad = tmp_path / 'broken.json'
    text = open(TRAIN).read()
    bad.write_text(text[:len(text) // 2])
    kwargs = dict(metainfo=None) if not meta else dict(scheme='mafl5')
    with pytest.raises(ValueError, match='broken.json is not valid JSON'):
        ULDFaceDataset(ann_file=str(bad), data_root=ROOT, pipeline=PIPELINE,
                       **kwargs)
    bad.write_text('[1, 2, 3]')
    with pytest.raises(ValueError, match='broken.json is not a COCO'):
        ULDFaceDataset(ann_file=str(bad), data_root=ROOT, pipeline=PIPELINE,
                       **kwargs)
