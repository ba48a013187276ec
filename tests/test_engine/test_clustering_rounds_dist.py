# Copyright (c) mmuld contributors. All rights reserved.
"""Clustering rounds across 2 processes (gloo): shares, gather, broadcast.

mmengine's ``init_dist`` needs CUDA, so the test initialises a CPU process
group itself; the rounds only rely on ``mmengine.dist`` collectives.
"""
import os
import os.path as osp
import socket
from types import SimpleNamespace

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.logging import MMLogger

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world, port, sd_dir, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch_dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    from mmuld.engine import ClusteringRounds
    from mmuld.registry import DATASETS, MODELS
    from mmuld.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py'))
    cfg.model.backbone.pretrained = sd_dir
    torch.manual_seed(0)  # same weights on both ranks
    model = MODELS.build(cfg.model)
    model.set_stage('duld')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = osp.join(ROOT, 'data', 'face_samples')
    dataset = DATASETS.build(ds_cfg)
    runner = SimpleNamespace(
        model=model,
        train_dataloader=SimpleNamespace(dataset=dataset),
        iter=model.stage_schedule[1].start,  # the first duld iteration
        work_dir=out_dir,
        logger=MMLogger.get_instance(f'dist{rank}'))
    hook = ClusteringRounds(interval=2, batch_size=2)
    stage = model.stage_schedule.at(runner.iter)
    assert hook.due(model, stage, runner.iter)
    hook.run(runner, stage)
    torch.save(
        dict(bank=model.pseudo_labels.state_dict(),
             centroids=model.uld_centroids),
        osp.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def test_two_ranks_get_the_same_pseudo_labels(tmp_path, tiny_sd_dir):
    mp.spawn(
        _worker,
        args=(2, _free_port(), tiny_sd_dir, str(tmp_path)),
        nprocs=2,
        join=True)
    r0 = torch.load(tmp_path / 'rank0.pth')
    r1 = torch.load(tmp_path / 'rank1.pth')
    for key in ('keypoints', 'valid', 'labels', 'pose_labels'):
        assert torch.equal(r0['bank'][key], r1['bank'][key]), key
    assert torch.equal(r0['centroids'], r1['centroids'])
    # every image of the 8 (4 per rank) took part in the clustering
    assert r0['bank']['valid'].shape == (8, 10)
    assert r0['bank']['valid'].any(dim=1).all()
    # only rank 0 writes the round to the work dir
    assert len(list((tmp_path / 'pseudo_labels').glob('*.npz'))) == 1
