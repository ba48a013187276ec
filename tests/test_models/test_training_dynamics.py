# Copyright (c) mmuld contributors. All rights reserved.
"""Training dynamics: ELBO reaching the detector, frozen
descriptors, augmentation that moves the labels, keypoint selection."""
import copy

import torch
from mmengine.config import Config

from mmuld.engine import enter_stage, train_mode
from mmuld.models.losses import ELBOLoss
from mmuld.models.pose_estimators.uld_cfg import ULDTestCfg
from mmuld.models.utils.self_training_augment import augment_with_labels
from mmuld.registry import MODELS
from mmuld.utils import register_all_modules

CFG = 'configs/dldpp_face_world_cpu.py'


def _model(**test_cfg):
    register_all_modules()
    cfg = Config.fromfile(CFG)
    cfg.model.test_cfg.update(test_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def _bank(n, k=10, size=64):
    from mmuld.clustering import PseudoLabelBank
    g = torch.Generator().manual_seed(1)
    return PseudoLabelBank(
        keypoints=torch.rand(n, k, 2, generator=g) * (size - 16) + 8,
        valid=torch.ones(n, k, dtype=torch.bool),
        labels=torch.arange(k).repeat(n, 1),
        pose_labels=torch.arange(n) % 2,
        codes=torch.randn(n, 64, generator=g))


def _samples(n):
    from mmpose.structures import PoseDataSample
    return [PoseDataSample(metainfo=dict(sample_idx=i)) for i in range(n)]


def test_elbo_reaches_the_detector_and_is_balanced():
    model, _ = _model()
    model.set_stage('proxy')
    model.set_pseudo_labels(_bank(4))
    x = torch.randn(4, 3, 64, 64)
    losses = model.loss(x, _samples(4))
    # per-loss gradient norms into the detector output are logged
    assert {'gnorm_heatmap', 'gnorm_recon', 'gnorm_kl'} <= set(losses)
    assert losses['gnorm_recon'] > 0
    # the ELBO alone moves the detector head (default: not detached)
    model.zero_grad()
    losses['loss_recon'].backward()
    g = [p.grad for p in model.detector_head.parameters()]
    assert any(v is not None and v.abs().sum() > 0 for v in g)
    # balanced: the ELBO is on the scale of the detector's MSE, not 100x
    ratio = float(losses['loss_recon'] / losses['loss_heatmap'])
    assert 0.01 < ratio < 100, ratio
    # the old behaviour is still available and stops at the detector
    model.train_cfg.detach_vae_input = True
    model.zero_grad()
    model.loss(x, _samples(4))['loss_recon'].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in model.detector_head.parameters())


def test_per_pixel_elbo_is_the_sum_divided_by_pixels():
    g = torch.Generator().manual_seed(0)
    recon = torch.randn(2, 1, 8, 8, generator=g)
    target = torch.rand(2, 1, 8, 8, generator=g)
    mu, logvar = torch.randn(2, 4, generator=g), torch.randn(2, 4,
                                                             generator=g)
    s = ELBOLoss(reduction='sum')(recon, target, mu, logvar)
    p = ELBOLoss(reduction='per_pixel')(recon, target, mu, logvar)
    for k in ('loss_recon', 'loss_kl'):
        torch.testing.assert_close(p[k], s[k] / 64)


def test_descriptors_stay_fixed_in_proxy_and_dldpp_stages():
    """The stage lists freeze what feeds the descriptors; BatchNorm of the
    frozen parts keeps its statistics."""
    model, cfg = _model()
    x = torch.randn(4, 3, 64, 64)
    model.set_pseudo_labels(_bank(4))
    model.eval()
    with torch.no_grad():
        before = model.extract_keypoints(
            x, candidates='dense')['desc_map'].clone()
    state = copy.deepcopy(model.state_dict())
    for stage in list(model.stage_schedule)[2:]:
        enter_stage(model, stage)
        train_mode(model)
        opt = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(3):
            losses = model.loss(x, _samples(4))
            loss = sum(v for k, v in losses.items() if k.startswith('loss'))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        after = model.extract_keypoints(x, candidates='dense')['desc_map']
    torch.testing.assert_close(after, before)
    new = model.state_dict()
    for k in state:
        if k.startswith(('backbone.', 'descriptor_head.')):
            torch.testing.assert_close(new[k], state[k], msg=k)
    # ... while the detector did train
    assert any(not torch.equal(new[k], state[k]) for k in state
               if k.startswith('detector_head.'))


def test_augmentation_moves_labels_with_the_content():
    img = torch.full((3, 3, 48, 48), -1.0)
    kpts = torch.tensor([[[10., 14.]], [[30., 20.]], [[24., 40.]]])
    for b in range(3):
        x, y = kpts[b, 0].long()
        img[b, :, y - 1:y + 2, x - 1:x + 2] = 1.0  # a bright 3x3 dot
    torch.manual_seed(0)
    out, kp, valid, m = augment_with_labels(
        img, kpts, torch.ones(3, 1, dtype=torch.bool), max_rotation=30,
        scale_range=(0.8, 1.2), max_shift=0.1, brightness=0, contrast=0,
        saturation=0)
    assert not torch.allclose(kp, kpts)  # something moved
    for b in range(3):
        if not valid[b, 0]:
            continue
        flat = out[b].mean(0).argmax()
        peak = torch.tensor([flat % 48, flat // 48], dtype=torch.float)
        assert (peak - kp[b, 0]).norm() <= 1.5, (b, peak, kp[b, 0])
    # no flips: the left-to-right order of two labels is kept
    two = torch.tensor([[[10., 24.], [38., 24.]]])
    _, kp2, _, _ = augment_with_labels(
        torch.zeros(1, 3, 48, 48), two, torch.ones(1, 2, dtype=torch.bool),
        max_rotation=15)
    assert kp2[0, 0, 0] < kp2[0, 1, 0]


def test_keypoint_selection_defaults():
    """+-2-cell NMS and a 0.15 confidence by default (Mallis et al.)."""
    model, _ = _model()
    # the typed defaults, not the config's values
    model.test_cfg = ULDTestCfg.from_cfg(
        dict(min_keypoints=0, candidates='nms'), 'test_cfg')
    # build a model whose head output is a fixed heatmap
    logits = torch.full((1, 1, 16, 16), -10.0)
    logits[0, 0, 5, 5] = 3.0   # peak
    logits[0, 0, 5, 7] = 2.0   # 2 cells away: suppressed by +-2 NMS
    logits[0, 0, 12, 12] = -2.5  # sigmoid 0.08 < 0.15: dropped
    logits[0, 0, 10, 4] = 1.0  # kept
    desc = torch.randn(1, 32, 16, 16)
    model._forward = lambda x, data_samples=None: (logits, desc)
    out = model.extract_keypoints(torch.zeros(1, 3, 64, 64))
    cells = ((out['keypoints'][0][out['valid'][0]] + 0.5) / 4 - 0.5)
    found = sorted(map(tuple, cells.round().tolist()))
    assert found == [(4.0, 10.0), (5.0, 5.0)]


def test_dense_landmarks_are_decoded_on_the_similarity_map():
    """Optional soft-argmax of the centroid similarity: a landmark whose part
    covers several cells lands on the part's centre, not on one of its
    cells; the default parabola fit stays at the exemplar."""
    model, _ = _model()
    desc = torch.zeros(1, 32, 16, 16)
    desc[0, 1] = 1.0  # background
    # a part of 3x2 cells (x 4..6, y 7..8) and one stray similar cell
    desc[0, :, 7:9, 4:7] = 0.0
    desc[0, 0, 7:9, 4:7] = 1.0
    centroids = torch.zeros(1, 1, 32)
    centroids[0, 0, 0] = 1.0
    kpts = torch.tensor([[[4 * 4 + 1.5, 7 * 4 + 1.5]]])  # exemplar: a corner
    model.test_cfg.softargmax_temperature = 0.02
    out = model.decoder.refine(kpts, desc, centroids)
    # centre of the part: cells x = 5, y = 7.5 -> input pixels
    torch.testing.assert_close(out, torch.tensor([[[5 * 4 + 1.5,
                                                    7.5 * 4 + 1.5]]]),
                               atol=1e-3, rtol=0)
    model.test_cfg.softargmax_temperature = None  # default: parabola
    out = model.decoder.refine(kpts, desc, centroids)
    # parabola on a plateau: stays within half a cell of the exemplar
    assert (out - kpts).abs().max() <= 0.5 * 4 + 1e-6
