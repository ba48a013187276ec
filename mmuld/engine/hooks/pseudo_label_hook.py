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
from mmuld.clustering import assign_to_centroids
from mmuld.clustering.clustering_round import (health_warnings,
                                               peak_pseudo_labels,
                                               round_diagnostics, summarize)
from mmuld.clustering.dense_decoding import similarity_peaks
from mmuld.clustering.pseudo_label_bank import BANK_BUFFER_PREFIX
from mmuld.models.pose_estimators.stages import Stage, schedule_of
from mmuld.models.utils import sample_descriptors
from mmuld.models.utils.border import near_border, valid_input_box
from mmuld.models.utils.interest_points import (corner_candidates,
                                                corner_strength)
from mmuld.registry import HOOKS
from mmuld.utils.checkpoint import save_checkpoint_atomic

DATA_BATCH = Optional[dict]


def pseudo_label_spread(keypoints: torch.Tensor, valid: torch.Tensor,
                        side: float) -> float:
    """How spread out a round's pseudo-labels are, without ground truth:
    per image the mean distance between its landmarks, as a share of the
    input side; the median over images. Landmarks bunched on one part
    show as a small value (a face filling the crop spreads its parts over
    about a third of it)."""
    k = keypoints.shape[1]
    d = torch.cdist(keypoints.float(), keypoints.float())
    pair = valid[:, :, None] & valid[:, None] & ~torch.eye(
        k, dtype=torch.bool)[None]
    cnt = pair.sum((1, 2))
    per_image = (d * pair).sum((1, 2))[cnt > 0] / cnt[cnt > 0]
    if not per_image.numel() or side <= 0:
        return float('nan')
    return float(per_image.median() / side)


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
            next round (the collapse spiral, docs/methods.md);
            ``'corners'``: the image's strongest Shi-Tomasi corners inside
            the part of the input that shows the image, as many as dense
            candidates (:func:`corner_candidates`; the places people mark as
            parts, where a descriptor map learnt from scratch tells every
            location apart; docs/methods.md, "Candidates at image
            corners").
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
        decode (str): How a round places the landmarks. ``'exemplar'``
            (default, the paper): per image and cluster the candidate
            nearest to the centroid. ``'peaks'``: the first round of a run
            clusters the candidates into ``overcluster * K`` clusters and
            keeps K whose similarity maps peak sharply at distinct places;
            every landmark lies at the peak of its centroid's similarity
            over all map cells; later rounds keep the landmarks and refine
            their centroids (:func:`peak_pseudo_labels`). The model should
            decode the same way at test time (``test_cfg.decode='peaks'``).
        overcluster (float, optional): With ``decode='peaks'``: clusters
            per landmark of the first round (M / K). None: K clusters.
        separation (float): With ``decode='peaks'``: landmarks whose peaks
            lie closer than this share of the input side (median over the
            images) are one part. Defaults to 0.08.
        peak_radius (float): With ``decode='peaks'``: a peak's margin is
            measured against the cells farther than this share of the
            input side. Defaults to 0.1.
        refine_steps (int): With ``decode='peaks'``: re-estimations of the
            centroids in a round (of the previous round's, and inside each
            pose cluster with two-stage clustering). Defaults to 1.
        corner_window (float): With ``candidates='corners'``: side of the
            structure tensor's window, a share of the input side (rounded
            to an odd number of pixels, at least 3). Defaults to 0.08
            (5 pixels of a 64-pixel input).
        corner_spacing (float): With ``candidates='corners'``: two corners
            are at least this share of the input side apart. Defaults to
            0.045.
        corner_rank (bool): With ``decode='peaks'``: rank the first
            round's clusters by their peak margin times the image's corner
            response at the peak (relative to its mean), so that the K
            landmarks are sharply peaked *and* lie on corners. Defaults to
            False (the margin alone).
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
                 kmeans_n_init: int = 10,
                 decode: str = 'exemplar',
                 overcluster: Optional[float] = None,
                 separation: float = 0.08,
                 peak_radius: float = 0.1,
                 refine_steps: int = 1,
                 corner_window: float = 0.08,
                 corner_spacing: float = 0.045,
                 corner_rank: bool = False) -> None:
        if interval <= 0:
            raise ValueError('interval must be positive')
        for name, value in (('num_pose_clusters', num_pose_clusters),
                            ('batch_size', batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'PseudoLabelHook: {name}={value!r} must be '
                                 'an integer >= 1')
        self.interval = interval
        self.dense_first_round = dense_first_round
        if candidates not in ('dense', 'nms', 'corners'):
            raise ValueError("candidates must be 'dense', 'nms' or "
                             f"'corners', got {candidates!r}")
        self.candidates = candidates
        for name, value in (('corner_window', corner_window),
                            ('corner_spacing', corner_spacing)):
            if not 0 < value < 1:
                raise ValueError(f'PseudoLabelHook: {name}={value!r} must be '
                                 'a share of the input side in (0, 1)')
        self.corner_window = float(corner_window)
        self.corner_spacing = float(corner_spacing)
        self.corner_rank = bool(corner_rank)
        if min_candidates != 'k' and (not isinstance(min_candidates, int)
                                      or min_candidates < 0):
            raise ValueError(f"min_candidates must be 'k' or an integer >= 0,"
                             f' got {min_candidates!r}')
        self.min_candidates = min_candidates
        if not isinstance(kmeans_n_init, int) or kmeans_n_init < 1:
            raise ValueError(f'PseudoLabelHook: kmeans_n_init='
                             f'{kmeans_n_init!r} must be a positive integer')
        self.kmeans_n_init = kmeans_n_init
        if overcluster is not None and not overcluster >= 1:
            raise ValueError(f'PseudoLabelHook: overcluster={overcluster!r} '
                             'must be None or >= 1')
        if not 0 <= separation < 1:
            raise ValueError(f'PseudoLabelHook: separation={separation!r} '
                             'must be a share of the input side in [0, 1)')
        self.overcluster = overcluster
        self.separation = separation
        if decode not in ('exemplar', 'peaks'):
            raise ValueError("PseudoLabelHook: decode must be 'exemplar' or "
                             f"'peaks', got {decode!r}")
        self.decode = decode
        self.peak_radius = float(peak_radius)
        self.refine_steps = int(refine_steps)
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
                save_checkpoint_atomic(runner, name)
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

        The keypoints are the detector's (dense cells or NMS peaks) or,
        with ``candidates='corners'``, the image corners of
        :meth:`_corners`.

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
            keypoints=[], descriptors=[], image_ids=[], border=[], codes={},
            input_size=None)
        progress = mmengine.ProgressBar(len(loader)) \
            if get_rank() == 0 else None
        for data in loader:
            data = model.data_preprocessor(data, False)
            out = model.extract_keypoints(
                data['inputs'], dense=dense,
                min_keypoints=self.min_keypoints(model))
            if self.candidates == 'corners':
                out.update(self._corners(model, data, out['desc_map']))
            for i, ds in enumerate(data['data_samples']):
                idx = int(ds.metainfo['sample_idx'])
                res['input_size'] = float(max(ds.metainfo['input_size']))
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

    def _corner_window(self, side: float) -> int:
        """The structure tensor's window in pixels for an input side."""
        return max(3, int(round(self.corner_window * side)) // 2 * 2 + 1)

    def _corners(self, model, data: dict,
                 desc_map: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``candidates='corners'``: the strongest Shi-Tomasi corners of
        each input inside the part that shows the image (as many as dense
        candidates, ``test_cfg.dense_max_keypoints``) and the descriptors
        there."""
        inputs = data['inputs']
        side = float(max(inputs.shape[-2:]))
        num = max(self.min_keypoints(model), int(
            (model.test_cfg or {}).get('dense_max_keypoints', 32)))
        window = self._corner_window(side)
        kpts, valid = corner_candidates(
            inputs, num, window=window,
            spacing=self.corner_spacing * side,
            boxes=[valid_input_box(ds.metainfo)
                   for ds in data['data_samples']],
            margin=model.stride)
        return dict(
            keypoints=kpts,
            valid=valid,
            descriptors=sample_descriptors(desc_map, kpts, model.stride))

    @torch.no_grad()
    def _peak_pass(self, runner: Runner, centroids: torch.Tensor,
                   with_descriptors: bool,
                   with_saliency: bool = False) -> Dict[str, torch.Tensor]:
        """One pass over the training set: the similarity peaks of
        ``centroids`` ((C, D), or (N, C, D) per image by ``sample_idx``)
        in every image, gathered from all ranks in image order (rank 0's
        centroids are used everywhere); ``with_saliency`` adds the image's
        corner response at each peak (``corner_rank``)."""
        if get_world_size() > 1:
            box = [centroids]
            broadcast_object_list(box, src=0)
            centroids = box[0]
        model = self._model(runner)
        loader = self._build_loader(runner)
        was_training = model.training
        model.eval()
        side = None
        local = {}
        for data in loader:
            data = model.data_preprocessor(data, False)
            desc_map = model.descriptor_map(data['inputs'])
            idx = [int(ds.metainfo['sample_idx'])
                   for ds in data['data_samples']]
            side = float(max(data['data_samples'][0].metainfo['input_size']))
            cents = centroids if centroids.dim() == 2 else centroids[idx]
            res = similarity_peaks(
                desc_map, cents.to(desc_map.device), model.stride,
                radius=self.peak_radius * side,
                border=(model.test_cfg or {}).get('border', 1),
                with_descriptors=with_descriptors)
            if with_saliency:
                res['saliency'] = corner_strength(
                    data['inputs'], res['keypoints'],
                    self._corner_window(side))
            for j, i in enumerate(idx):
                local[i] = {key: v[j].cpu() for key, v in res.items()}
        model.train(was_training)
        parts = all_gather_object(local) if get_world_size() > 1 \
            else [local]
        merged = {}
        for part in parts:
            merged.update(part)
        order = sorted(merged)
        return {key: torch.stack([merged[i][key] for i in order])
                for key in merged[order[0]]}

    @staticmethod
    def _merge_codes(parts: list, num_images: int) -> torch.Tensor:
        """(N, Dz) pose codes of the training images from all ranks."""
        merged = {}
        for p in parts:
            merged.update(p['codes'])
        dim = next(iter(merged.values())).shape[0]
        codes = torch.zeros(num_images, dim)
        for i, c in merged.items():
            codes[i] = c
        return codes

    def _peak_round(self, runner: Runner, model, parts: list,
                    codes: Optional[torch.Tensor], num_images: int,
                    side: float) -> tuple:
        """``decode='peaks'``: cluster the candidates, keep K peaked
        centroids and place the landmarks at their peaks (every rank runs
        the decoding passes; rank 0's centroids are used)."""
        desc = torch.cat([t for p in parts for t in p['descriptors']])
        # the landmarks chosen at the first round of the run are kept;
        # later rounds refine their centroids
        init = None
        if model.pseudo_labels is not None and model.uld_centroids.numel():
            init = model.uld_centroids.float().mean(0).cpu()
        # only the round that chooses the landmarks ranks them
        rank = self.corner_rank and init is None
        bank, cents, stats = peak_pseudo_labels(
            desc, num_images, model.num_landmarks,
            lambda c, d: self._peak_pass(runner, c, d, rank), codes=codes,
            num_pose_clusters=self.num_pose_clusters, seed=self.seed,
            device=self.device, n_init=self.kmeans_n_init,
            overcluster=self.overcluster,
            separation=self.separation * side,
            refine_steps=self.refine_steps, init_centroids=init)
        # the same health figures as a K-means round: the candidates,
        # assigned to the landmarks' (mean) centroids
        labels, _ = assign_to_centroids(
            desc, cents['centroids'].float().mean(0), device=self.device)
        stats.update(round_diagnostics(
            torch.cat([t for p in parts for t in p['image_ids']]),
            num_images, labels.cpu(), model.num_landmarks,
            torch.cat([t for p in parts for t in p['border']])))
        stats['landmark_spread'] = pseudo_label_spread(
            bank.keypoints, bank.valid, side)
        return bank.state_dict(), cents, stats

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
        kind = {'corners': ', corner candidates'}.get(
            self.candidates, ', dense candidates' if dense else '')
        runner.logger.info(
            f'clustering round {round_index} (stage "{stage.name}", '
            f'{"two-stage" if with_codes else "K-means"}{kind}) over '
            f'{num_images} training images')
        local = self._extract(runner, with_codes, dense=dense)
        parts = all_gather_object(local) if get_world_size() > 1 \
            else [local]
        payload = [None]
        codes = self._merge_codes(parts, num_images) if with_codes else None
        side = max(p['input_size'] or 0.0 for p in parts)
        if self.decode == 'peaks':
            payload = [self._peak_round(runner, model, parts, codes,
                                        num_images, side)]
        elif get_rank() == 0:
            kpts = torch.cat([t for p in parts for t in p['keypoints']])
            desc = torch.cat([t for p in parts for t in p['descriptors']])
            ids = torch.cat([t for p in parts for t in p['image_ids']])
            border = torch.cat([t for p in parts for t in p['border']])
            bank, cents, stats = cluster_pseudo_labels(
                kpts, desc, ids, num_images, model.num_landmarks,
                codes=codes, num_pose_clusters=self.num_pose_clusters,
                seed=self.seed, device=self.device, near_border=border,
                n_init=self.kmeans_n_init)
            stats['landmark_spread'] = pseudo_label_spread(
                bank.keypoints, bank.valid, side)
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
