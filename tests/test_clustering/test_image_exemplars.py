# Copyright (c) mmuld contributors. All rights reserved.
import os.path as osp

import torch
from mmengine.config import Config

from mmuld.clustering import image_exemplars

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_image_exemplars_known_answer():
    cents = torch.tensor([[1., 0.], [0., 1.], [float('nan'), 0.]])
    desc = torch.tensor([
        [[0.9, 0.1], [1.0, 0.0], [0.1, 0.8]],  # image 0
        [[0.2, 1.0], [0.0, 1.0], [0.7, 0.3]],  # image 1
    ])
    valid = torch.tensor([[True, True, True], [True, False, True]])
    idx, dist = image_exemplars(desc, cents, valid)
    # indices are per image; the invalid exact match of image 1 is ignored
    assert idx.tolist() == [[1, 2, -1], [2, 0, -1]]
    assert torch.allclose(dist[0, :2], torch.tensor([0.0, 0.05]))
    assert torch.isinf(dist[:, 2]).all()


def test_uld_assign_landmarks_uses_the_pose_cluster_centroids(tiny_sd_dir):
    from mmuld.registry import MODELS
    from mmuld.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py'))
    cfg.model.backbone.pretrained = tiny_sd_dir
    cfg.model.num_landmarks = 2
    model = MODELS.build(cfg.model)
    # pose cluster 0 maps descriptor e0 to landmark 0, cluster 1 swaps them
    e0, e1 = torch.tensor([1., 0.]), torch.tensor([0., 1.])
    model.set_centroids(
        torch.stack([torch.stack([e0, e1]), torch.stack([e1, e0])]),
        pose_centroids=torch.tensor([[0., 0.], [10., 10.]]))
    kpts = torch.tensor([[[5., 5.], [9., 9.]]]).repeat(2, 1, 1)
    out = dict(
        keypoints=kpts,
        scores=torch.tensor([[0.9, 0.8], [0.9, 0.8]]),
        valid=torch.ones(2, 2, dtype=torch.bool),
        descriptors=torch.stack([e0, e1])[None].repeat(2, 1, 1),
        codes=torch.tensor([[0.1, 0.], [9., 10.]]))
    res = model.assign_landmarks(out)
    assert res['pose_labels'].tolist() == [0, 1]
    assert res['keypoints'][0].tolist() == [[5., 5.], [9., 9.]]
    assert res['keypoints'][1].tolist() == [[9., 9.], [5., 5.]]
    assert torch.allclose(res['scores'][1], torch.tensor([0.8, 0.9]))
    assert res['visible'].eq(1).all()
