# Copyright (c) mmuld contributors. All rights reserved.
"""A clustering round's inputs without a training run, for tests."""
import os.path as osp
from types import SimpleNamespace
from typing import Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FACE_SAMPLES = osp.join(ROOT, 'data', 'face_samples')
CPU_CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_world_cpu.py')


def cpu_round_setup(work_dir: str = 'unused',
                    name: str = 'round') -> Tuple[object, SimpleNamespace,
                                                  object, Config]:
    """The CPU default model (seed 0) entered into the D-ULD stage, on the
    real face samples of ``data/face_samples``, and a stand-in runner with
    what :class:`ClusteringRounds` reads (model, training set, iteration,
    work dir, logger).

    Args:
        work_dir (str): The runner's work dir.
        name (str): The logger's name.

    Returns:
        tuple: ``(model, runner, dataset, cfg)``.
    """
    from mmuld.registry import DATASETS, MODELS
    from mmuld.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(CPU_CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.set_stage('duld')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.update(data_root=FACE_SAMPLES, ann_file='uld_5pt_train.json')
    dataset = DATASETS.build(ds_cfg)
    runner = SimpleNamespace(
        model=model, train_dataloader=SimpleNamespace(dataset=dataset),
        iter=model.stage_schedule[1].start, work_dir=work_dir,
        logger=MMLogger.get_instance(name))
    return model, runner, dataset, cfg
