# Copyright (c) mmuld contributors. All rights reserved.
"""A clustering round that places the landmarks at similarity peaks, and
the model decoding the same way, on the real face samples."""
import numpy as np
import torch
from mmengine.dataset import pseudo_collate

from mmuld.engine import ClusteringRounds
from mmuld.testing import cpu_round_setup


def _runner(tmp_path):
    model, runner, dataset, cfg = cpu_round_setup(str(tmp_path),
                                                  'peak_round')
    hook = ClusteringRounds(**cfg.train_cfg.clustering)
    return model, hook, runner, dataset


def test_peak_round_then_test_time_decoding(tmp_path):
    model, hook, runner, dataset = _runner(tmp_path)
    assert hook.decode == 'peaks' and model.test_cfg.decode == 'peaks'
    hook.run(runner, 'duld')
    bank = model.pseudo_labels
    k = model.num_landmarks
    assert bank.keypoints.shape == (len(dataset), k, 2)
    assert bank.valid.all()  # a peak for every landmark of every image
    # K distinct landmarks: no two share their place in most images
    d = torch.cdist(bank.keypoints, bank.keypoints)
    med = d.median(0).values + torch.eye(k) * 1e6
    assert med.min() > 0
    assert model.uld_centroids.shape == (1, k, 64)
    # the round that chose the landmarks anchors them where it found them
    assert torch.equal(bank.anchors, bank.keypoints)
    # a later round keeps the landmarks: their centroids are re-estimated
    # as the mean descriptor at the anchors
    first = model.uld_centroids.clone()
    hook.run(runner, 'duld')
    cos = (first[0] * model.uld_centroids[0]).sum(-1)
    assert (cos > 0.95).all()
    assert torch.equal(model.pseudo_labels.anchors, bank.anchors)
    at = hook._sample_pass(runner, bank.anchors)
    assert at.shape == (len(dataset), k, 64)
    torch.testing.assert_close(
        model.uld_centroids[0], torch.nn.functional.normalize(
            at.mean(0), dim=-1), rtol=0, atol=1e-5)
    # a resumed run gets the anchors back with the rest of the bank, and
    # its next round is the one the killed run would have made
    fresh, fresh_runner, _, _ = cpu_round_setup(str(tmp_path),
                                                'peak_round_resumed')
    assert fresh.pseudo_labels is None
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.pseudo_labels.anchors, bank.anchors)
    hook.run(fresh_runner, 'duld')
    hook.run(runner, 'duld')
    torch.testing.assert_close(fresh.uld_centroids, model.uld_centroids)
    torch.testing.assert_close(fresh.pseudo_labels.keypoints,
                               model.pseudo_labels.keypoints)
    # test time: the landmarks are the peaks of the same centroids
    model.eval()
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(4)]), False)
    preds = model.predict(data['inputs'], data['data_samples'])
    for i, p in enumerate(preds):
        kp = p.pred_instances.keypoints[0]
        assert kp.shape == (k, 2)
        assert np.asarray(p.pred_instances.keypoints_visible).all()
        # in image pixels, inside the crop of the input
        x0, y0 = (np.asarray(p.metainfo['input_center']) -
                  np.asarray(p.metainfo['input_scale']) / 2)
        x1, y1 = x0 + p.metainfo['input_scale'][0], \
            y0 + p.metainfo['input_scale'][1]
        assert (kp[:, 0] >= x0).all() and (kp[:, 0] <= x1).all()
        assert (kp[:, 1] >= y0).all() and (kp[:, 1] <= y1).all()


def test_round_candidates_are_the_image_corners(tmp_path):
    from mmuld.models.utils import sample_descriptors
    from mmuld.models.utils.border import valid_input_box
    from mmuld.models.utils.interest_points import corner_candidates
    model, hook, runner, dataset = _runner(tmp_path)
    assert hook.candidates == 'corners'
    res = hook._extract(runner, with_codes=False, dense=True)
    model.eval()
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(2)]), False)
    side = float(data['inputs'].shape[-1])
    boxes = [valid_input_box(ds.metainfo) for ds in data['data_samples']]
    kpts, valid = corner_candidates(
        data['inputs'], 32, window=5, spacing=0.045 * side, boxes=boxes,
        margin=model.stride)
    with torch.no_grad():
        desc = sample_descriptors(
            model.descriptor_map(data['inputs']), kpts, model.stride)
    for i in range(2):
        assert valid[i].sum() >= model.num_landmarks
        assert torch.equal(res['keypoints'][i], kpts[i][valid[i]])
        assert torch.allclose(res['descriptors'][i], desc[i][valid[i]],
                              atol=1e-5)
        # inside the part of the input that shows the image, off its edge
        x0, y0, x1, y1 = boxes[i]
        k = res['keypoints'][i]
        assert (k[:, 0] >= x0 + model.stride - 1).all()
        assert (k[:, 0] <= x1 - model.stride + 1).all()
        assert (k[:, 1] >= y0 + model.stride - 1).all()
        assert (k[:, 1] <= y1 - model.stride + 1).all()


def test_a_bank_without_anchors_is_anchored_at_its_pseudo_labels(tmp_path):
    from unittest import mock
    model, hook, runner, dataset = _runner(tmp_path)
    hook.run(runner, 'duld')
    bank = model.pseudo_labels
    bank.anchors = None  # as in a checkpoint written before anchors
    model.set_pseudo_labels(bank)
    assert model.pseudo_labels.anchors is None
    runner.logger = mock.Mock(wraps=runner.logger)
    hook.run(runner, 'duld')
    said = ' '.join(
        str(c.args[0]) for c in runner.logger.warning.call_args_list)
    assert 'hold no anchors' in said
    # the last round's pseudo-labels are the anchors from then on
    assert torch.equal(model.pseudo_labels.anchors, bank.keypoints)
