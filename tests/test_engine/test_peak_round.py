# Copyright (c) mmuld contributors. All rights reserved.
"""A clustering round that places the landmarks at similarity peaks, and
the model decoding the same way, on the real face samples."""
import numpy as np
import torch
from mmengine.dataset import pseudo_collate

from mmuld.engine import PseudoLabelHook
from mmuld.testing import cpu_round_setup


def _runner(tmp_path):
    model, runner, dataset, cfg = cpu_round_setup(str(tmp_path),
                                                  'peak_round')
    hook_cfg = next(h for h in cfg.custom_hooks
                    if h['type'] == 'PseudoLabelHook')
    hook = PseudoLabelHook(**{k: v for k, v in hook_cfg.items()
                              if k != 'type'})
    return model, hook, runner, dataset


def test_peak_round_then_test_time_decoding(tmp_path):
    model, hook, runner, dataset = _runner(tmp_path)
    assert hook.decode == 'peaks' and model.decode_mode() == 'peaks'
    hook.run_round(runner, 'duld')
    bank = model.pseudo_labels
    k = model.num_landmarks
    assert bank.keypoints.shape == (len(dataset), k, 2)
    assert bank.valid.all()  # a peak for every landmark of every image
    # K distinct landmarks: no two share their place in most images
    d = torch.cdist(bank.keypoints, bank.keypoints)
    med = d.median(0).values + torch.eye(k) * 1e6
    assert med.min() > 0
    assert model.uld_centroids.shape == (1, k, 64)
    # a later round keeps the landmarks (it refines their centroids)
    first = model.uld_centroids.clone()
    hook.run_round(runner, 'duld')
    cos = (first[0] * model.uld_centroids[0]).sum(-1)
    assert (cos > 0.95).all()
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
