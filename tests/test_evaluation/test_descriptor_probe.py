# Copyright (c) mmuld contributors. All rights reserved.
"""The ground-truth probe on descriptors whose answer is known."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from mmuld.evaluation.functional import ground_truth_probe
from mmuld.testing.square_world import square_world

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_probe_places_parts_with_telling_descriptors_only():
    _, corners, maps = square_world(n=60, seed=0)
    kpts = torch.from_numpy(corners).float()
    ref, query = slice(0, 40), slice(40, 60)
    good = ground_truth_probe(maps[ref], kpts[ref], maps[query],
                              kpts[query], stride=4, thrs=(0.1, ))
    assert good['accuracy'].shape == (1, 4)
    assert good['accuracy'].min() >= 0.9
    # descriptors that ignore the location: the peaks are anywhere
    noise = torch.randn(60, 12, 16, 16, generator=torch.Generator().
                        manual_seed(0))
    bad = ground_truth_probe(noise[ref], kpts[ref], noise[query],
                             kpts[query], stride=4, thrs=(0.1, ))
    assert bad['accuracy'].max() <= 0.3
    with pytest.raises(ValueError, match='point counts'):
        ground_truth_probe(maps[ref], kpts[ref, :3], maps[query],
                           kpts[query], stride=4)


def test_part_probe_tool_on_a_checkpoint(tmp_path):
    """The command line on a tiny face world and an untrained model."""
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint

    from mmuld.datasets.synthetic_faces import FaceWorldConfig, \
        make_face_world
    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    import part_probe
    register_all_modules()
    cfg_path = osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py')
    model = MODELS.build(Config.fromfile(cfg_path).model)
    ckpt = str(tmp_path / 'model.pth')
    save_checkpoint(model.state_dict(), ckpt)
    make_face_world(str(tmp_path / 'w'), num_train=8, num_test=4, seed=1,
                    cfg=FaceWorldConfig(image_size=64))
    res = part_probe.main([
        cfg_path, ckpt, '--data-root', str(tmp_path / 'w'), '--train-ann',
        'annotations/train.json', '--test-ann', 'annotations/test.json',
        '--thrs', '0.2', '1000', '--candidates', '--first-round'
    ])
    assert res['names'] == ['left_eye', 'right_eye', 'nose', 'left_mouth',
                            'right_mouth']
    acc = np.asarray(res['accuracy'])
    assert acc.shape == (2, 5)
    assert (acc[1] == 1).all()  # every peak is within 1000 normalisers
    # the round's corner candidates: some near each part at 1000
    # normalisers, fewer at 0.2
    cov = np.asarray(res['candidate_coverage'])
    assert cov.shape == (2, 5) and (cov[1] == 1).all()
    assert (cov[0] <= cov[1]).all()
    # the first round on the 8 reference images: its best over-clusters
    # and chosen landmarks, every one within 1000 normalisers
    first = res['first_round']
    best, chosen = np.asarray(first['best']), np.asarray(first['chosen'])
    assert best.shape == chosen.shape == (2, 5)
    assert (best[1] == 1).all() and (chosen[1] == 1).all()
    assert (chosen <= best + 1e-9).all()
    # the round as the config's options change it: ranked by the corner
    # response, 3 over-clusters per landmark
    ranked = part_probe.main([
        cfg_path, ckpt, '--data-root', str(tmp_path / 'w'), '--train-ann',
        'annotations/train.json', '--test-ann', 'annotations/test.json',
        '--thrs', '1000', '--first-round', '--cfg-options',
        'train_cfg.clustering.corner_rank=True',
        'train_cfg.clustering.overcluster=3'
    ])['first_round']
    assert ranked['overclusters'] == 30
    assert np.asarray(ranked['chosen']).shape == (1, 5)


def test_candidate_coverage_on_known_answers():
    from mmuld.evaluation.functional import candidate_coverage
    # two images, parts at (10, 10) and (30, 10): normaliser 20 px
    gt = torch.tensor([[[10., 10.], [30., 10.]]] * 2)
    cands = torch.tensor([
        [[11., 10.], [30., 15.], [0., 0.]],   # part 0 at 1 px, part 1 at 5
        [[10., 13.], [31., 10.], [30., 10.]],  # 3 px; 0 px but invalid
    ])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    cov = candidate_coverage(cands, valid, gt, (0, 1), thrs=(0.1, 0.2))
    # at 2 px: part 0 in image 0 only, part 1 in image 1 (1 px) only
    np.testing.assert_allclose(cov[0], [0.5, 0.5])
    # at 4 px: part 0 in both, part 1 still not in image 0 (5 px)
    np.testing.assert_allclose(cov[1], [1.0, 0.5])


def _square_candidates(parts=(0, 1, 2, 3), n: int = 60):
    """Square-world maps and candidates at the given corners of every
    square, with the map's descriptors there."""
    from mmuld.models.utils import sample_descriptors
    _, corners, maps = square_world(n=n, seed=0)
    pts = torch.from_numpy(corners).float()[:, list(parts)]
    desc = sample_descriptors(maps, pts, 4.0)
    return maps, desc.reshape(-1, desc.shape[-1]), torch.from_numpy(corners)


def test_first_round_probe_tells_a_missing_cluster_from_a_lost_choice():
    from mmuld.evaluation.functional import first_round_probe
    maps, desc, gt = _square_candidates()
    kwargs = dict(stride=4.0, overcluster=2, separation=8.0,
                  peak_radius=4.0, thrs=(0.2, ))
    res = first_round_probe(maps, desc, gt, num_landmarks=4, **kwargs)
    assert res['overclusters'] == 8
    assert res['best'].shape == res['chosen'].shape == (1, 4)
    # candidates on the four corners: each forms a cluster and the choice
    # keeps all four
    assert res['best'].min() >= 0.9 and res['chosen'].min() >= 0.9
    assert (res['chosen'] <= res['best'] + 1e-9).all()
    # three landmarks for four parts: every part still has its cluster,
    # the choice leaves one out
    three = first_round_probe(maps, desc, gt, num_landmarks=3, **kwargs)
    assert three['best'].min() >= 0.9
    assert sorted(three['chosen'][0] >= 0.9) == [False, True, True, True]
    assert three['chosen'].min() == 0
    # no candidate on the last corner: no cluster forms there
    maps, desc, gt = _square_candidates(parts=(0, 1, 2))
    missing = first_round_probe(maps, desc, gt, num_landmarks=4, **kwargs)
    assert missing['best'][0, :3].min() >= 0.9
    assert missing['best'][0, 3] <= 0.1
