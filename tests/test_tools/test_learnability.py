# Copyright (c) mmuld contributors. All rights reserved.
"""Scoring of the learnability benchmark (the run itself:
tests/test_engine/test_learning.py)."""
import numpy as np
import pytest

from mmuld.evaluation import learnability as L


def test_scores_against_known_answers():
    """The scoring code gives the known answer on hand-made predictions."""
    rng = np.random.default_rng(0)
    n, m = 40, 10
    gt = rng.uniform(20, 100, (n + m, 5, 2))
    crop = np.tile([0., 0., 128., 128.], (n + m, 1))

    def split(pred, sl):
        return dict(pred=pred[sl], valid=np.ones(pred[sl].shape[:2], bool),
                    gt=gt[sl], crop=crop[sl], paths=[''] * len(gt[sl]))

    band = np.full(m, 8.0)
    # landmarks = the GT itself (plus a fixed offset): perfect discovery
    exact = np.concatenate([gt, gt + 3], 1)
    r = L.score(split(exact, slice(0, n)), split(exact, slice(n, None)),
                band)
    # only the ridge penalty of the protocol separates forward from 0
    assert r['forward'] < 0.5
    assert r['per_landmark_accuracy_mean'] == 1.0
    rand = L.random_points_baseline(split(exact, slice(0, n)),
                                    split(exact, slice(n, None)), 10, band)
    assert rand['forward'] > 10 * r['forward'] + 10
    assert rand['backward'] > 2 * r['backward']
    # points in the outer band are counted as border points
    edge = exact.copy()
    edge[n:, :5] = [2.0, 64.0]
    r = L.score(split(edge, slice(0, n)), split(edge, slice(n, None)), band)
    assert r['border_fraction'] == pytest.approx(0.5)
    # the mean shape of identical faces is exact
    same = np.repeat(gt[:1], n + m, 0)
    tr = dict(gt=same[:n], crop=crop[:n])
    te = dict(gt=same[n:], crop=crop[n:])
    assert L.mean_shape_baseline(tr, te) == pytest.approx(0.0, abs=1e-9)


def test_pseudo_label_rounds_against_known_answers(tmp_path):
    """A round whose pseudo-labels are the ground truth (in input pixels of
    a crop that is not the whole image) scores near 0; random ones score
    like random points; a bank of another size is refused."""
    import json
    rng = np.random.default_rng(1)
    n = 60
    gt = rng.uniform(40, 90, (n, 5, 2))
    # a different crop box (offset and size) per image
    x0 = rng.uniform(0, 30, (n, 2))
    side = rng.uniform(100, 140, (n, 1))
    crop = np.concatenate([x0, x0 + side], 1)
    train = dict(gt=gt, crop=crop, input_size=np.tile([64., 64.], (n, 1)),
                 pred=gt, valid=np.ones((n, 5), bool), paths=[''] * n)
    # image -> input pixels of the crop (mmpose's top-down mapping)
    exact = (gt - crop[:, None, :2]) / side[:, None] * 64.
    kpts = np.concatenate([exact, exact + 1.0], 1)  # K = 10
    valid = np.ones((n, 10), bool)
    valid[::7, 3] = False
    np.savez(tmp_path / 'round_001_iter_100.npz', keypoints=kpts,
             valid=valid, labels=np.zeros((n, 10)), round=1, iteration=100)
    json.dump(dict(stage='duld'), open(tmp_path / 'round_001_iter_100.json',
                                       'w'))
    np.savez(tmp_path / 'round_002_iter_200.npz',
             keypoints=rng.uniform(0, 64, (n, 10, 2)), valid=valid,
             labels=np.zeros((n, 10)), round=2, iteration=200)
    rounds = L.pseudo_label_rounds(str(tmp_path), train)
    assert [r['round'] for r in rounds] == [1, 2]
    assert rounds[0]['stage'] == 'duld' and rounds[1]['stage'] is None
    assert rounds[0]['valid'] == pytest.approx(valid.mean())
    assert rounds[0]['forward'] < 1.0
    assert rounds[1]['forward'] > 10 * rounds[0]['forward'] + 10
    assert '| 1 | 100 | duld |' in L.rounds_table(rounds)
    small = dict(train, gt=gt[:10], crop=crop[:10],
                 input_size=train['input_size'][:10])
    with pytest.raises(ValueError, match='training split 10'):
        L.pseudo_label_rounds(str(tmp_path), small)


def test_mean_shape_baseline_uses_the_training_shapes_only():
    """Training and test shapes differ (the test faces sit lower in their
    crops): the baseline predicts the training mean, so its error is the
    offset between the two means, not 0."""
    rng = np.random.default_rng(3)
    base = np.array([[40., 50.], [80., 50.], [60., 70.], [45., 90.],
                     [75., 90.]])
    crop = np.tile([0., 0., 128., 128.], (20, 1))
    train = dict(gt=base + rng.normal(0, 0.5, (20, 5, 2)), crop=crop)
    test = dict(gt=base + [0., 8.] + rng.normal(0, 0.5, (20, 5, 2)),
                crop=crop)
    # inter-ocular distance 40 px, offset 8 px: about 20 %
    assert L.mean_shape_baseline(train, test) == pytest.approx(20.0, abs=2)
    same = dict(gt=test['gt'], crop=crop)
    assert L.mean_shape_baseline(same, test) < 2.0


def test_any_number_of_named_points(tmp_path):
    """A 3-point json: names from its category, scores over 3 parts, the
    normaliser from chosen points; a json without names gets point_i."""
    import json
    import sys
    import os.path as osp
    pts = np.array([[30., 40.], [70., 40.], [50., 80.]])
    ann = dict(
        images=[dict(id=1, file_name='a.png', width=128, height=128)],
        annotations=[dict(id=1, image_id=1, category_id=1,
                          keypoints=[v for p in pts for v in (*p, 2)],
                          bbox=[0, 0, 128, 128], num_keypoints=3)],
        categories=[dict(id=1, name='lamp',
                         keypoints=['base', 'joint', 'tip'])])
    path = tmp_path / 'three.json'
    path.write_text(json.dumps(ann))
    assert L.keypoint_names(str(path)) == ['base', 'joint', 'tip']
    ann['categories'][0].pop('keypoints')
    (tmp_path / 'bare.json').write_text(json.dumps(ann))
    assert L.keypoint_names(str(tmp_path / 'bare.json')) == [
        'point_0', 'point_1', 'point_2']
    rng = np.random.default_rng(0)
    n = 30
    gt = pts + rng.normal(0, 3, (n, 3, 2))
    crop = np.tile([0., 0., 128., 128.], (n, 1))
    arr = dict(gt=gt, crop=crop, pred=gt + 1.0, valid=np.ones((n, 3), bool),
               input_size=np.tile([64., 64.], (n, 1)))
    names = ['base', 'joint', 'tip']
    r = L.score(arr, arr, np.full(n, 8.0), norm_indices=(0, 2), names=names)
    assert list(r['part_accuracy']) == names and r['all_parts_found']
    table = L.markdown_table({'m': r}, names)
    assert '| base acc. | joint acc. | tip acc. |' in table
    # the tool reads the names and refuses normalising points it lacks
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools', 'analysis'))
    import learnability as tool
    args = tool.parse_args(['--data-root', str(tmp_path), '--train-ann',
                            'three.json', '--test-ann', 'three.json',
                            '--work-dir', str(tmp_path / 'w'),
                            '--norm-points', '0', '2'])
    assert tool._part_names(args) == names
    args.norm_points = (0, 3)
    with pytest.raises(ValueError, match='--norm-points 0 3'):
        tool._part_names(args)
    args.norm_points = (0, 2)
    assert tool._norm_text(args, names) == \
        'the distance of base and tip (--norm-points 0 2)'
    assert tool._norm_text(tool.parse_args(
        ['--data-root', str(tmp_path), '--train-ann', 'three.json',
         '--test-ann', 'three.json', '--work-dir', str(tmp_path / 'w'),
         '--norm', 'bbox']), names).startswith('sqrt(w * h)')


def test_box_normaliser_does_not_shrink_with_the_yaw():
    """``'bbox'``: sqrt(w * h) of the GT box. A face turned so that its
    eyes are 4 px apart: a landmark 2 px off the nose misses at 0.2
    inter-ocular distances and hits at 0.2 box sizes."""
    n = 20
    # eyes 4 px apart (a wide yaw), nose and mouth below: box 10 x 25
    pts = np.array([[50., 40.], [54., 40.], [60., 52.], [51., 65.],
                    [55., 65.]])
    gt = np.tile(pts, (n, 1, 1))
    assert np.allclose(L.normaliser(gt, 'bbox'), np.sqrt(10 * 25))
    assert np.allclose(L.normaliser(gt, (0, 1)), 4.0)
    with pytest.raises(ValueError, match="'bbox'"):
        L.normaliser(gt, 'box')
    pred = gt + np.array([2.0, 0.0])
    crop = np.tile([0., 0., 128., 128.], (n, 1))
    arr = dict(gt=gt, crop=crop, pred=pred, valid=np.ones((n, 5), bool),
               input_size=np.tile([64., 64.], (n, 1)))
    names = ['le', 're', 'n', 'lm', 'rm']
    iod = L.score(arr, arr, np.full(n, 8.0), (0, 1), names)
    box = L.score(arr, arr, np.full(n, 8.0), 'bbox', names)
    assert max(iod['per_landmark_accuracy']) == 0.0
    assert min(box['per_landmark_accuracy']) == 1.0
    # the mean-shape baseline's NME scales with the normaliser
    ratio = L.mean_shape_baseline(arr, dict(arr, gt=gt + 1.0), (0, 1)) / \
        L.mean_shape_baseline(arr, dict(arr, gt=gt + 1.0), 'bbox')
    assert np.isclose(ratio, np.sqrt(250) / 4.0)


def test_verdict_needs_every_part():
    base = {'mean shape (baseline)': dict(forward=40.0),
            'random points (baseline)': dict(forward=41.0)}
    good = dict(forward=8.0, border_fraction=0.0, all_parts_found=True,
                parts_found=5, num_parts=5, worst_part='nose',
                worst_part_accuracy=0.7, spread=1.0)
    assert L.verdict({**base, 'D-ULD++': good}).endswith(
        'discovers landmarks')
    bunched = dict(good, all_parts_found=False, parts_found=3,
                   worst_part='left_mouth', worst_part_accuracy=0.05)
    v = L.verdict({**base, 'D-ULD++': bunched})
    assert 'NOT discovered' in v and 'finds 3 of 5 parts' in v
    # landmarks at the border are fine where the parts are there
    edge = dict(good, border_fraction=0.2)
    assert 'NOT' in L.verdict({**base, 'D-ULD++': edge})
    assert 'NOT' not in L.verdict({**base, 'D-ULD++': edge}, gt_border=0.2)
