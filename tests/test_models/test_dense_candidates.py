# Copyright (c) mmuld contributors. All rights reserved.
"""Dense keypoint candidates of ``ULDEstimator.extract_keypoints``."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmuld.registry import MODELS
from mmuld.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py')


@pytest.fixture(scope='module')
def model():
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    m = MODELS.build(cfg.model)
    m.eval()
    return m


def _fake_forward(model, heat):
    """Make the network output the given (B, 1, 16, 16) probabilities."""
    logits = torch.logit(heat.clamp(1e-4, 1 - 1e-4))
    desc = torch.nn.functional.normalize(
        torch.randn(heat.shape[0], 32, *heat.shape[-2:]), dim=1)
    model._forward = lambda inputs, data_samples=None: (logits, desc)


def _heat(n_high):
    """Background 0.01..0.1 (below score_thr), n_high cells at 0.5..0.9."""
    g = torch.Generator().manual_seed(n_high)
    heat = torch.rand(1, 1, 16, 16, generator=g) * 0.09 + 0.01
    cells = torch.randperm(14 * 14, generator=g)[:n_high]
    ys, xs = cells // 14 + 1, cells % 14 + 1  # off the 1-cell border
    heat[0, 0, ys, xs] = torch.linspace(0.9, 0.5, n_high)
    return heat, set(zip(xs.tolist(), ys.tolist()))


@pytest.mark.parametrize('n_high', [3, 40])
def test_dense_candidates(model, n_high):
    heat, high = _heat(n_high)
    _fake_forward(model, heat)
    try:
        x = torch.zeros(1, 3, 64, 64)
        cap = model.test_cfg.dense_max_keypoints
        assert cap == 32
        out = model.extract_keypoints(x, candidates='dense', min_keypoints=0)
        # cells above score_thr only, at most dense_max_keypoints
        assert int(out['valid'].sum()) == min(n_high, cap)
        got = model.extract_keypoints(x, candidates='dense', min_keypoints=10)
        valid = got['valid'][0]
        # at least min_keypoints per image, even below score_thr
        assert int(valid.sum()) == max(10, min(n_high, cap))
        scores = got['scores'][0][valid]
        assert torch.all(scores[:-1] >= scores[1:])  # highest first
        # the cells above the threshold come first
        cells = ((got['keypoints'][0][valid] + 0.5) / model.stride -
                 0.5).round().long().tolist()
        first = {tuple(c) for c in cells[:min(n_high, cap)]}
        assert first <= high
    finally:
        del model._forward
