# Copyright (c) mmuld contributors. All rights reserved.
"""Periodic clustering of keypoint descriptors into pseudo-labels."""
import os.path as osp
from typing import Dict, Optional, Sequence

import mmengine
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.dist import (all_gather_object, broadcast_object_list,
                           get_rank, get_world_size)
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from mmuld.registry import HOOKS
from ..clustering_round import cluster_pseudo_labels, summarize
from ..pseudo_label_bank import PseudoLabelBank

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class PseudoLabelHook(Hook):
    """Cluster keypoint descriptors into pseudo-labels (D-ULD / D-ULD++).

    Before the first iteration of every self-training stage and then every
    ``interval`` iterations, the model runs over the whole training set
    (each rank its share; results are gathered), keypoints come from the
    detector by NMS, their descriptors from the descriptor head and, in
    stages listed in ``two_stage``, the latent pose codes from the VAE
    encoder. Rank 0 clusters them (:func:`cluster_pseudo_labels`) and the
    result is broadcast to every rank and handed to the model.

    Every round is saved as ``pseudo_labels/round_XXX_iter_N.npz`` in the work
    dir, and the current one is stored in every checkpoint, so ``--resume``
    continues with the same pseudo-labels.

    Args:
        interval (int): Iterations between clustering rounds. Defaults to
            5000 (paper).
        stages (Sequence[str]): Stages that use pseudo-labels.
        two_stage (Sequence[str]): Stages that use two-stage clustering.
        num_pose_clusters (int): Q. Defaults to 10 (paper).
        batch_size (int): Batch size of the inference pass.
        num_workers (int): Dataloader workers of the inference pass.
        seed (int): K-means seed.
        device (str, optional): Clustering device; default: the GPU when
            there is one.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 interval: int = 5000,
                 stages: Sequence[str] = ('duld', 'proxy', 'dldpp'),
                 two_stage: Sequence[str] = ('dldpp', ),
                 num_pose_clusters: int = 10,
                 batch_size: int = 16,
                 num_workers: int = 0,
                 seed: int = 0,
                 device: Optional[str] = None) -> None:
        if interval <= 0:
            raise ValueError('interval must be positive')
        self.interval = interval
        self.stages = tuple(stages)
        self.two_stage = tuple(two_stage)
        self.num_pose_clusters = num_pose_clusters
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.device = device
        self.bank: Optional[PseudoLabelBank] = None
        self.bank_stage: Optional[str] = None
        self.round = 0

    @staticmethod
    def _model(runner: Runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    # -------------------------------------------------------------- #
    # persistence
    # -------------------------------------------------------------- #
    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        if self.bank is not None:
            checkpoint['pseudo_labels'] = dict(
                bank=self.bank.state_dict(),
                stage=self.bank_stage,
                round=self.round)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('pseudo_labels')
        if state is None:
            return
        self.bank = PseudoLabelBank.from_state_dict(state['bank'])
        self.bank_stage = state['stage']
        self.round = int(state['round'])
        self._model(runner).set_pseudo_labels(self.bank)
        runner.logger.info(
            f'restored pseudo-labels of round {self.round} (stage '
            f'"{self.bank_stage}", iteration {self.bank.iteration})')

    # -------------------------------------------------------------- #
    # schedule
    # -------------------------------------------------------------- #
    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        stage = self._model(runner).stage
        if stage not in self.stages:
            return
        # a bank from a later iteration comes from another run (load_from)
        age = runner.iter - self.bank.iteration if self.bank else 0
        due = (
            self.bank is None or self.bank_stage != stage
            or age >= self.interval or age < 0)
        if due:
            self.run_round(runner, stage)

    # -------------------------------------------------------------- #
    # one round
    # -------------------------------------------------------------- #
    def _build_loader(self, runner: Runner) -> DataLoader:
        dataset = runner.train_dataloader.dataset
        sampler = DefaultSampler(dataset, shuffle=False, round_up=False)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=pseudo_collate)

    @torch.no_grad()
    def _extract(self, runner: Runner, with_codes: bool) -> Dict[str, list]:
        model = self._model(runner)
        loader = self._build_loader(runner)
        was_training = model.training
        model.eval()
        res = dict(keypoints=[], descriptors=[], image_ids=[], codes={})
        progress = mmengine.ProgressBar(len(loader)) \
            if get_rank() == 0 else None
        for data in loader:
            data = model.data_preprocessor(data, False)
            out = model.extract_keypoints(data['inputs'])
            for i, ds in enumerate(data['data_samples']):
                idx = int(ds.metainfo['sample_idx'])
                v = out['valid'][i]
                res['keypoints'].append(out['keypoints'][i][v].cpu())
                res['descriptors'].append(out['descriptors'][i][v].cpu())
                res['image_ids'].append(
                    torch.full((int(v.sum()), ), idx, dtype=torch.long))
                if with_codes:
                    res['codes'][idx] = out['codes'][i].cpu()
            if progress is not None:
                progress.update()
        model.train(was_training)
        return res

    def run_round(self, runner: Runner, stage: str) -> None:
        """Extract, gather, cluster, broadcast and save pseudo-labels."""
        model = self._model(runner)
        with_codes = stage in self.two_stage
        num_images = len(runner.train_dataloader.dataset)
        runner.logger.info(
            f'clustering round {self.round + 1} (stage "{stage}", '
            f'{"two-stage" if with_codes else "K-means"}) over '
            f'{num_images} training images')
        local = self._extract(runner, with_codes)
        parts = all_gather_object(local) if get_world_size() > 1 \
            else [local]
        payload = [None]
        if get_rank() == 0:
            kpts = torch.cat([t for p in parts for t in p['keypoints']])
            desc = torch.cat([t for p in parts for t in p['descriptors']])
            ids = torch.cat([t for p in parts for t in p['image_ids']])
            codes = None
            if with_codes:
                merged = {}
                for p in parts:
                    merged.update(p['codes'])
                dim = next(iter(merged.values())).shape[0]
                codes = torch.zeros(num_images, dim)
                for i, c in merged.items():
                    codes[i] = c
            bank, cents, stats = cluster_pseudo_labels(
                kpts, desc, ids, num_images, model.num_landmarks,
                codes=codes, num_pose_clusters=self.num_pose_clusters,
                seed=self.seed, device=self.device)
            stats['keypoints'] = float(desc.shape[0])
            payload = [(bank.state_dict(), cents, stats)]
        if get_world_size() > 1:
            broadcast_object_list(payload, src=0)
        state, cents, stats = payload[0]
        self.round += 1
        state.update(round=self.round, iteration=runner.iter)
        self.bank = PseudoLabelBank.from_state_dict(state)
        self.bank_stage = stage
        model.set_pseudo_labels(self.bank)
        model.set_centroids(cents['centroids'], cents['pose_centroids'])
        runner.logger.info(f'\nclustering round {self.round}: '
                           f'{summarize(stats)}')
        if get_rank() == 0:
            out_dir = osp.join(runner.work_dir, 'pseudo_labels')
            mmengine.mkdir_or_exist(out_dir)
            self.bank.save(
                osp.join(out_dir,
                         f'round_{self.round:03d}_iter_{runner.iter}.npz'))
