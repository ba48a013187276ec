# Copyright (c) mmuld contributors. All rights reserved.
"""The final checkpoints hold a clustering round of the final weights."""
import os
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner

from mmuld.clustering import PseudoLabelBank
from mmuld.clustering.pseudo_label_bank import BANK_BUFFER_PREFIX
from mmuld.engine import ClusteringRounds

CENTROIDS = ('uld_centroids', 'uld_pose_centroids')


@pytest.fixture(scope='module')
def oracle(trained_dldpp, pipeline_cfg, tmp_path_factory):
    """A clustering round run by a fresh runner on the weights of the
    final checkpoint."""
    work = trained_dldpp['work_dir']
    runner = Runner.from_cfg(
        pipeline_cfg(tmp_path_factory.mktemp('oracle'), 'final_oracle'))
    runner.load_checkpoint(trained_dldpp['checkpoint'])
    model = runner.model
    model.set_stage('dldpp')
    ClusteringRounds(**runner.cfg.train_cfg.clustering).run(runner, 'dldpp')
    return dict(
        work=work,
        centroids={k: getattr(model, k).clone() for k in CENTROIDS},
        bank=model.pseudo_labels,
        max_iters=sum(s['iters'] for s in runner.cfg.model.stages))


@pytest.mark.parametrize('name', ['stage4_dldpp.pth', 'iter_10.pth'])
def test_final_checkpoint_holds_final_round(oracle, name):
    ckpt = torch.load(
        osp.join(oracle['work'], name), map_location='cpu',
        weights_only=False)
    for key in CENTROIDS:
        torch.testing.assert_close(
            ckpt['state_dict'][key], oracle['centroids'][key], rtol=0,
            atol=1e-6, equal_nan=True, msg=key)
    bank = PseudoLabelBank.from_buffers(ckpt['state_dict'],
                                        BANK_BUFFER_PREFIX)
    assert bank.iteration == oracle['max_iters']
    torch.testing.assert_close(bank.keypoints, oracle['bank'].keypoints,
                               rtol=0, atol=1e-5)
    assert torch.equal(bank.labels, oracle['bank'].labels)
    assert torch.equal(bank.pose_labels, oracle['bank'].pose_labels)
    torch.testing.assert_close(bank.codes, oracle['bank'].codes, rtol=0,
                               atol=1e-6)


def test_final_round_is_logged_and_saved(trained_dldpp, oracle):
    work = trained_dldpp['work_dir']
    npz = sorted(f for f in os.listdir(osp.join(work, 'pseudo_labels'))
                 if f.endswith('.npz'))
    assert npz[-1].endswith(f'_iter_{oracle["max_iters"]}.npz'), npz
