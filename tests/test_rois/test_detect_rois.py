# Copyright (c) mmuld contributors. All rights reserved.
import importlib.util
import json
import os.path as osp
import shutil

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the face samples shipped with the repository
FACE_SAMPLES = osp.join(ROOT, 'data', 'face_samples')
TOOL = osp.join(ROOT, 'tools', 'detect_rois.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('detect_rois', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(name):
    path = osp.join(FACE_SAMPLES, name, f'test_{name}.json')
    assert osp.isfile(path), f'missing face sample annotation {path}'
    return path


def test_json_annotation_boxes(tool, tmp_path):
    ann = _json('300w')
    out_file = tmp_path / 'rois.json'
    tool.main([ann, '--out', str(out_file)])
    out = json.loads(out_file.read_text())
    coco = json.load(open(ann))
    assert set(out['rois']) == {im['file_name'] for im in coco['images']}
    id2name = {im['id']: im['file_name'] for im in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        np.testing.assert_allclose(out['rois'][id2name[a['image_id']]],
                                   [x, y, x + w, y + h], rtol=1e-5)
    assert set(out['source'].values()) == {'AnnotationRoIProvider'}
    assert out['counts'] == {
        'AnnotationRoIProvider': 2, 'WholeImageRoIProvider': 0, 'none': 0,
        'error': 0}


def test_directory_with_corrupt_image(tool, tmp_path):
    src = osp.join(FACE_SAMPLES, 'cofw', '001805.jpg')
    assert osp.isfile(src), f'missing face sample {src}'
    img_dir = tmp_path / 'imgs'
    img_dir.mkdir()
    shutil.copy(src, img_dir / 'good.jpg')
    (img_dir / 'bad.jpg').write_bytes(b'not an image at all')
    out_file = tmp_path / 'out' / 'rois.json'
    with pytest.warns(UserWarning, match='bad.jpg'):
        out = tool.main([str(img_dir), '--out', str(out_file)])
    assert json.loads(out_file.read_text()) == out
    import mmcv
    h, w = mmcv.imread(src).shape[:2]
    assert out['rois']['good.jpg'] == [0, 0, w, h]
    assert out['rois']['bad.jpg'] is None
    assert out['source'] == {'good.jpg': 'WholeImageRoIProvider',
                             'bad.jpg': 'error'}
    assert out['counts']['error'] == 1
    assert out['counts']['WholeImageRoIProvider'] == 1
    assert 'bad.jpg' in out['errors']


def test_detector_chain_on_face_samples(tool, tmp_path, rtmdet_config):
    ann = _json('wflw')
    out_file = tmp_path / 'rois.json'
    with pytest.warns(UserWarning, match='random weights'):
        out = tool.main([
            ann, '--det-config', rtmdet_config, '--classes', 'person',
            '--score-thr', '1.0', '--out', str(out_file)
        ])
    # random weights + threshold 1.0: the detector never serves
    assert out['counts']['MMDetRoIProvider'] == 0
    assert out['counts']['AnnotationRoIProvider'] == 2
    assert all(r is not None and r[2] > r[0] and r[3] > r[1]
               for r in out['rois'].values())


def test_bad_input(tool, tmp_path):
    with pytest.raises(FileNotFoundError):
        tool.main([str(tmp_path / 'missing.json')])
    bad = tmp_path / 'x.json'
    bad.write_text('{"foo": 1}')
    with pytest.raises(ValueError, match='COCO'):
        tool.main([str(bad)])


def test_library_without_the_tool(tmp_path):
    """``mmuld.rois.detect`` does the work; the tool only parses args."""
    from mmuld.rois import (build_roi_chain, collect_items, detect_rois,
                            write_rois)
    ann = _json('cofw')
    root, items = collect_items(ann)
    assert root == osp.dirname(ann)
    coco = json.load(open(ann))
    assert [m['key'] for m in items] == [
        im['file_name'] for im in coco['images']]
    out = detect_rois(items, build_roi_chain(whole_image=False),
                      progress=False)
    id2name = {im['id']: im['file_name'] for im in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        np.testing.assert_allclose(out['rois'][id2name[a['image_id']]],
                                   [x, y, x + w, y + h], rtol=1e-5)
    path = tmp_path / 'sub' / 'rois.json'
    write_rois(out, str(path))
    assert json.loads(path.read_text()) == out
    with pytest.raises(ValueError, match='no RoI provider'):
        build_roi_chain(annotation=False, whole_image=False)
    tool_src = open(TOOL).read()
    assert 'def collect_items' not in tool_src
    assert 'def detect_rois' not in tool_src
