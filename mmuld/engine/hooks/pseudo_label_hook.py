# Copyright (c) mmuld contributors. All rights reserved.
"""Periodic clustering of keypoint descriptors into pseudo-labels."""
import os.path as osp
from typing import Dict, Optional, Union

import mmengine
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.dist import (all_gather_object, broadcast_object_list,
                           get_rank, get_world_size)
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from mmuld.clustering import PseudoLabelBank, cluster_pseudo_labels
from mmuld.clustering.clustering_round import health_warnings, summarize
from mmuld.clustering.pseudo_label_bank import BANK_BUFFER_PREFIX
from mmuld.models.pose_estimators.stages import Stage, schedule_of
from mmuld.models.utils.border import near_border, valid_input_box
from mmuld.registry import HOOKS

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class PseudoLabelHook(Hook):
    """Cluster keypoint descriptors into pseudo-labels (D-ULD / D-ULD++).

    Which stages train on which pseudo-labels is the model's stage table
    (``pseudo_labels`` of each stage in ``model.stages``): the hook resolves
    the stage of an iteration from it on its own, not from ``model.stage``,
    so it does not depend on :class:`ULDStageHook` having run first.

    Before the first iteration of every self-training stage and then every
    ``interval`` iterations, the model runs over the whole training set
    (each rank its share; results are gathered), keypoints come from the
    detector by NMS, their descriptors from the descriptor head and, in
    stages with ``pseudo_labels='two_stage'``, the latent pose codes from
    the VAE encoder. Rank 0 clusters them (:func:`cluster_pseudo_labels`)
    and the result is broadcast to every rank and handed to the model.

    Every round is saved as ``pseudo_labels/round_XXX_iter_N.npz`` in the work
    dir. The hook keeps no state of its own: the bank of the current round
    and its centroids are buffers of the model, so every checkpoint holds
    them and ``--resume`` continues with the same pseudo-labels. A final
    round after the last iteration gives the final checkpoints centroids of
    the final weights.

    Args:
        interval (int): Iterations between clustering rounds. Defaults to
            5000 (paper).
        num_pose_clusters (int): Q. Defaults to 10 (paper).
        batch_size (int): Batch size of the inference pass.
        num_workers (int): Dataloader workers of the inference pass.
        seed (int): K-means seed.
        device (str, optional): Clustering device; default: the GPU when
            there is one.
        final_round (bool): Run a last round after the last training
            iteration and store it in the final checkpoints (see
            :meth:`after_train_iter`). Defaults to True.
        candidates (str): Keypoint candidates of a round. ``'dense'``
            (default): the highest-scoring map cells above the detector's
            score threshold (``test_cfg.dense_max_keypoints``, default a
            quarter of the map, at most 256), no NMS; ``'nms'``: the
            detector's NMS peaks (at least ``min_candidates``). The
            bootstrapped (SiLK-style) detector scores matchability, a smooth
            map with a few maxima per image, and a detector still learning
            a round's targets has few peaks: NMS candidates then starve the
            next round (the collapse spiral, docs/methods.md).
        dense_first_round (bool): With ``candidates='nms'``, still use dense
            candidates for the first round after bootstrapping. Defaults
            to True.
        min_candidates (int | str): Each image gives at least this many
            keypoint candidates (its highest NMS peaks) even below
            ``test_cfg.score_thr``; ``'k'`` means K. A detector that is still
            learning the targets of the last round then cannot starve the
            next one (the collapse spiral of docs/methods.md). 0 disables.
            Defaults to ``'k'``.
        kmeans_n_init (int): K-means runs per clustering from different
            seeds, the lowest inertia kept. Defaults to 10, the ``nredo``
            of Mallis et al.'s faiss K-means (docs/methods.md).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 interval: int = 5000,
                 num_pose_clusters: int = 10,
                 batch_size: int = 16,
                 num_workers: int = 0,
                 seed: int = 0,
                 device: Optional[str] = None,
                 final_round: bool = True,
                 candidates: str = 'dense',
                 dense_first_round: bool = True,
                 min_candidates: Union[int, str] = 'k',
                 kmeans_n_init: int = 10) -> None:
        if interval <= 0:
            raise ValueError('interval must be positive')
        for name, value in (('num_pose_clusters', num_pose_clusters),
                            ('batch_size', batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'PseudoLabelHook: {name}={value!r} must be '
                                 'an integer >= 1')
        self.interval = interval
        self.dense_first_round = dense_first_round
        if candidates not in ('dense', 'nms'):
            raise ValueError(f"candidates must be 'dense' or 'nms', got "
                             f'{candidates!r}')
        self.candidates = candidates
        if min_candidates != 'k' and (not isinstance(min_candidates, int)
                                      or min_candidates < 0):
            raise ValueError(f"min_candidates must be 'k' or an integer >= 0,"
                             f' got {min_candidates!r}')
        self.min_candidates = min_candidates
        if not isinstance(kmeans_n_init, int) or kmeans_n_init < 1:
            raise ValueError(f'PseudoLabelHook: kmeans_n_init='
                             f'{kmeans_n_init!r} must be a positive integer')
        self.kmeans_n_init = kmeans_n_init
        self.num_pose_clusters = num_pose_clusters
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.device = device
        self.final_round = bool(final_round)

    @staticmethod
    def _model(runner: Runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def stage_at(self, runner: Runner, iteration: int) -> Stage:
        """The stage of iteration ``iteration`` (0-based), from the model's
        stage table alone."""
        return schedule_of(runner.model).at(iteration)

    def bank_stage(self, runner: Runner,
                   bank: PseudoLabelBank) -> Stage:
        """The stage whose clustering round made ``bank`` (the stage of
        the iteration the round ran at)."""
        return self.stage_at(runner, bank.iteration)

    # -------------------------------------------------------------- #
    # persistence
    # -------------------------------------------------------------- #
    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Accept an old checkpoint, whose pseudo-labels were stored next to
        the ``state_dict`` (``checkpoint['pseudo_labels']``) before the
        model held them: they are moved into the ``state_dict`` that is
        about to be loaded."""
        legacy = checkpoint.get('pseudo_labels')
        weights = checkpoint.get('state_dict')
        if legacy is None or weights is None or \
                BANK_BUFFER_PREFIX + 'valid' in weights:
            return
        bank = PseudoLabelBank.from_state_dict(legacy['bank'])
        bank.round = int(legacy.get('round', bank.round))
        for name, value in bank.to_buffers().items():
            weights[BANK_BUFFER_PREFIX + name] = value

    # -------------------------------------------------------------- #
    # schedule
    # -------------------------------------------------------------- #
    def before_train(self, runner: Runner) -> None:
        """Check K and Q against the training set before iteration 1."""
        model = self._model(runner)
        bank = model.pseudo_labels
        if bank is not None:  # loaded with the model's weights
            runner.logger.info(
                f'restored pseudo-labels of round {bank.round} (stage '
                f'"{self.bank_stage(runner, bank).name}", iteration '
                f'{bank.iteration})')
        n = len(runner.train_dataloader.dataset)
        k = getattr(model, 'num_landmarks', None)
        if not isinstance(k, int) or k < 1:
            raise ValueError(
                f'model.num_landmarks={k!r}: K must be an integer >= 1')
        per_image = int((getattr(model, 'test_cfg', None) or {}).get(
            'max_keypoints', 50))
        if k > n * per_image:
            raise ValueError(
                f'model.num_landmarks={k} is more than the {n * per_image} '
                f'keypoints a clustering round can find ({n} training '
                f'images x test_cfg.max_keypoints={per_image})')
        if getattr(model, 'pose_vae', None) is None or \
                not schedule_of(model).uses('two_stage'):
            return  # no two-stage clustering in this run
        q = self.num_pose_clusters
        if q > n:
            raise ValueError(
                f'PseudoLabelHook: num_pose_clusters={q} is more than the '
                f'{n} training images (each pose cluster needs images)')
        if 2 * q > n:
            runner.logger.warning(
                f'num_pose_clusters={q} with {n} training images: pose '
                'clusters of one image are likely')

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        stage = self.stage_at(runner, runner.iter)
        if stage.pseudo_labels is None:
            return
        bank = self._model(runner).pseudo_labels
        # a bank from a later iteration comes from another run (load_from)
        age = runner.iter - bank.iteration if bank is not None else 0
        due = (
            bank is None
            or self.bank_stage(runner, bank).name != stage.name
            or age >= self.interval or age < 0)
        if due:
            self.run_round(runner, stage)

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """After the last iteration: a final clustering round.

        The last regular round ran up to ``interval`` iterations before the
        end, on older weights; inference needs centroids of the final
        weights. The final round runs here (every rank, before the
        ``CheckpointHook`` saves), and a stage checkpoint that
        :class:`ULDStageHook` already wrote at this iteration is written
        again, so both hold the final round's bank and centroids.
        """
        if not self.final_round or runner.iter + 1 != runner.max_iters:
            return
        stage = self.stage_at(runner, runner.iter)
        if stage.pseudo_labels is None:
            return
        runner.logger.info(
            f'final clustering round on the weights after iteration '
            f'{runner.iter + 1} (the last one)')
        self.run_round(runner, stage, iteration=runner.iter + 1)
        for hook in runner.hooks:
            if not hasattr(hook, 'stage_checkpoint'):
                continue
            name = hook.stage_checkpoint(runner, runner.iter)
            if name is not None:
                runner.save_checkpoint(runner.work_dir, name)
                runner.logger.info(
                    f'saved {name} again with the final clustering round')

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

    def min_keypoints(self, model) -> int:
        """Keypoint candidates kept per image even below the score
        threshold: K (``min_candidates='k'``) or a fixed number."""
        if self.min_candidates == 'k':
            return int(model.num_landmarks)
        return int(self.min_candidates or 0)

    @torch.no_grad()
    def _extract(self, runner: Runner, with_codes: bool,
                 dense: bool = False) -> Dict[str, list]:
        """Keypoints, descriptors (and codes) of the whole training set.

        Runs without autograd: a round stores only plain tensors, so the
        memory it holds is what it stores, whatever the number of images
        (with autograd on, every stored slice would keep its batch's graph
        alive until the round ends).
        """
        model = self._model(runner)
        loader = self._build_loader(runner)
        was_training = model.training
        model.eval()
        res = dict(
            keypoints=[], descriptors=[], image_ids=[], border=[], codes={})
        progress = mmengine.ProgressBar(len(loader)) \
            if get_rank() == 0 else None
        for data in loader:
            data = model.data_preprocessor(data, False)
            out = model.extract_keypoints(
                data['inputs'], dense=dense,
                min_keypoints=self.min_keypoints(model))
            for i, ds in enumerate(data['data_samples']):
                idx = int(ds.metainfo['sample_idx'])
                v = out['valid'][i]
                res['keypoints'].append(out['keypoints'][i][v].cpu())
                res['descriptors'].append(out['descriptors'][i][v].cpu())
                res['image_ids'].append(
                    torch.full((int(v.sum()), ), idx, dtype=torch.long))
                res['border'].append(
                    near_border(out['keypoints'][i][v].cpu(),
                                valid_input_box(ds.metainfo), model.stride))
                if with_codes:
                    res['codes'][idx] = out['codes'][i].cpu()
            if progress is not None:
                progress.update()
        if progress is not None:
            progress.file.write('\n')  # the bar leaves the line open
            progress.file.flush()
        model.train(was_training)
        return res

    def run_round(self,
                  runner: Runner,
                  stage: Union[Stage, str],
                  iteration: Optional[int] = None) -> None:
        """Extract, gather, cluster, broadcast and save pseudo-labels.

        The bank and the centroids go to the model (its buffers).

        Args:
            runner (Runner): The runner.
            stage (Stage | str): The stage the round is for (a name: its
                first stage of that name in the model's stage table); its
                ``pseudo_labels`` say K-means or two-stage clustering.
            iteration (int, optional): Iterations the weights have been
                trained for; default ``runner.iter`` (a round before an
                iteration), ``max_iters`` for the final round.
        """
        model = self._model(runner)
        if isinstance(stage, str):
            stage = next(s for s in schedule_of(model) if s.name == stage)
        iteration = runner.iter if iteration is None else int(iteration)
        with_codes = stage.two_stage
        num_images = len(runner.train_dataloader.dataset)
        previous = model.pseudo_labels
        round_index = (previous.round if previous is not None else 0) + 1
        dense = self.candidates == 'dense' or (self.dense_first_round
                                               and previous is None)
        runner.logger.info(
            f'clustering round {round_index} (stage "{stage.name}", '
            f'{"two-stage" if with_codes else "K-means"}'
            f'{", dense candidates" if dense else ""}) over '
            f'{num_images} training images')
        local = self._extract(runner, with_codes, dense=dense)
        parts = all_gather_object(local) if get_world_size() > 1 \
            else [local]
        payload = [None]
        if get_rank() == 0:
            kpts = torch.cat([t for p in parts for t in p['keypoints']])
            desc = torch.cat([t for p in parts for t in p['descriptors']])
            ids = torch.cat([t for p in parts for t in p['image_ids']])
            border = torch.cat([t for p in parts for t in p['border']])
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
                seed=self.seed, device=self.device, near_border=border,
                n_init=self.kmeans_n_init)
            payload = [(bank.state_dict(), cents, stats)]
        if get_world_size() > 1:
            broadcast_object_list(payload, src=0)
        state, cents, stats = payload[0]
        state.update(round=round_index, iteration=iteration)
        bank = PseudoLabelBank.from_state_dict(state)
        model.set_pseudo_labels(bank)
        model.set_centroids(cents['centroids'], cents['pose_centroids'])
        runner.logger.info(f'clustering round {round_index}: '
                           f'{summarize(stats)}')
        for warning in health_warnings(stats, model.num_landmarks):
            runner.logger.warning(
                f'clustering round {round_index}: {warning}')
        if get_rank() == 0:
            out_dir = osp.join(runner.work_dir, 'pseudo_labels')
            mmengine.mkdir_or_exist(out_dir)
            stem = osp.join(out_dir,
                            f'round_{round_index:03d}_iter_{iteration}')
            bank.save(stem + '.npz')
            mmengine.dump(
                dict(round=round_index, iteration=iteration,
                     stage=stage.name, **stats), stem + '.json', indent=1)
