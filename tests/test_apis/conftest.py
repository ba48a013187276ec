# Copyright (c) mmuld contributors. All rights reserved.
"""A tiny D-ULD++ checkpoint (random centroids) for the API tests."""
import os.path as osp

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'dldpp_face_samples_demo.py')
FACE_DIR = osp.join(ROOT, 'data', 'face_samples')


def _cfg_options(tiny_sd_dir):
    return {
        'model.backbone.pretrained': tiny_sd_dir,
        'train_dataloader.dataset.data_root': FACE_DIR,
    }


@pytest.fixture(scope='session')
def uld_checkpoint(tmp_path_factory, tiny_sd_dir):
    """Untrained model of the demo config with K random unit centroids."""
    from mmengine.runner import save_checkpoint

    from mmuld.apis import init_model
    model = init_model(CONFIG, None, 'cpu', _cfg_options(tiny_sd_dir))
    torch.manual_seed(0)
    k = model.num_landmarks
    dim = model.cfg.model.descriptor_head.desc_dim
    cents = torch.nn.functional.normalize(torch.randn(k, dim), dim=-1)
    model.set_centroids(cents)
    path = str(tmp_path_factory.mktemp('uld_ckpt') / 'uld.pth')
    save_checkpoint(
        dict(state_dict=model.state_dict(), meta=dict(dataset_meta=None)),
        path)
    return dict(
        config=CONFIG,
        checkpoint=path,
        cfg_options=_cfg_options(tiny_sd_dir),
        num_landmarks=k)
