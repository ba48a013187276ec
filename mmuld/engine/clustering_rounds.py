# Copyright (c) mmuld contributors. All rights reserved.
"""Periodic clustering of keypoint descriptors into pseudo-labels."""
import os.path as osp
from typing import Dict, List, Optional, Union

import mmengine
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.dist import get_rank
from torch.utils.data import DataLoader

from mmuld.clustering import PseudoLabelBank, cluster_pseudo_labels
from mmuld.clustering import assign_to_centroids
from mmuld.clustering.clustering_round import (health_warnings,
                                               peak_pseudo_labels,
                                               round_diagnostics, summarize)
from mmuld.clustering.dense_decoding import similarity_peaks
from mmuld.models.pose_estimators.landmark_decoder import DECODE_MODES
from mmuld.models.pose_estimators.stages import Stage, schedule_of
from mmuld.models.utils.border import near_border, valid_input_box
from mmuld.models.utils.candidates import CANDIDATE_KINDS
from mmuld.models.utils.interest_points import corner_strength, window_pixels
from mmuld.models.utils.keypoint_ops import sample_descriptors
from .dist_pass import broadcast, gather, inference_pass, on_rank0
from .stage_entry import unwrap


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


class ClusteringRounds:
    """Cluster keypoint descriptors into pseudo-labels (D-ULD / D-ULD++).

    Which stages train on which pseudo-labels is the model's stage table
    (``pseudo_labels`` of each stage in ``model.stages``).
    :class:`~mmuld.engine.loops.ULDTrainLoop` builds this object from
    ``train_cfg.clustering`` and asks it, before every iteration, whether a
    round is due (:meth:`due`), and runs the final round after the last
    iteration.

    Before the first iteration of every self-training stage and then every
    ``interval`` iterations, the model runs over the whole training set
    (each rank its share; results are gathered), keypoints come from the
    detector by NMS, their descriptors from the descriptor head and, in
    stages with ``pseudo_labels='two_stage'``, the latent pose codes from
    the VAE encoder. Rank 0 clusters them (:func:`cluster_pseudo_labels`)
    and the result is broadcast to every rank and handed to the model.

    Every round is saved as ``pseudo_labels/round_XXX_iter_N.npz`` in the work
    dir. This object keeps no state of its own: the bank of the current
    round and its centroids are buffers of the model, so every checkpoint
    holds them and ``--resume`` continues with the same pseudo-labels. A
    final round after the last iteration gives the final checkpoints
    centroids of the final weights.

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
            candidates (``corner_candidates``; the places people mark as
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
            pose cluster with two-stage clustering); 0 keeps the first
            round's centroids. Defaults to 1.
        refine_at (str): With ``decode='peaks'``: where a later round
            re-estimates a centroid. ``'anchors'``: from the current
            descriptors at the keypoints of the round that chose the
            landmarks (:attr:`PseudoLabelBank.anchors`), one step whatever
            ``refine_steps`` > 0. ``'peaks'``: at the centroid's own peaks,
            which compounds from round to round. Defaults to ``'anchors'``.
        corner_window (float): With ``candidates='corners'``: side of the
            structure tensor's window, a share of the input side (rounded
            to an odd number of pixels, at least 3). Defaults to 0.08
            (5 pixels of a 64-pixel input).
        corner_spacing (float): With ``candidates='corners'``: two corners
            are at least this share of the input side apart. Defaults to
            0.045.
        corner_subpix (float): With ``candidates='corners'``: move each
            corner to where the edges around it meet (OpenCV's
            ``cornerSubPix``), searching this share of the input side
            around it (a half-window; 0: no refinement). Defaults to 0.
        corner_rank (bool): With ``decode='peaks'``: rank the first
            round's clusters by their peak margin times the image's corner
            response at the peak (relative to its mean), so that the K
            landmarks are sharply peaked *and* lie on corners. Defaults to
            False (the margin alone).
    """

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
                 refine_at: str = 'anchors',
                 corner_window: float = 0.08,
                 corner_spacing: float = 0.045,
                 corner_subpix: float = 0.0,
                 corner_rank: bool = False) -> None:
        if interval <= 0:
            raise ValueError('interval must be positive')
        for name, value in (('num_pose_clusters', num_pose_clusters),
                            ('batch_size', batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f'clustering: {name}={value!r} must be '
                                 'an integer >= 1')
        self.interval = interval
        self.dense_first_round = dense_first_round
        if candidates not in CANDIDATE_KINDS:
            raise ValueError("candidates must be 'dense', 'nms' or "
                             f"'corners', got {candidates!r}")
        self.candidates = candidates
        for name, value in (('corner_window', corner_window),
                            ('corner_spacing', corner_spacing)):
            if not 0 < value < 1:
                raise ValueError(f'clustering: {name}={value!r} must be '
                                 'a share of the input side in (0, 1)')
        self.corner_window = float(corner_window)
        self.corner_spacing = float(corner_spacing)
        if not 0 <= corner_subpix < 0.5:
            raise ValueError(f'clustering: corner_subpix={corner_subpix!r} '
                             'must be a share of the input side in [0, 0.5)')
        self.corner_subpix = float(corner_subpix)
        self.corner_rank = bool(corner_rank)
        if min_candidates != 'k' and (not isinstance(min_candidates, int)
                                      or min_candidates < 0):
            raise ValueError(f"min_candidates must be 'k' or an integer >= 0,"
                             f' got {min_candidates!r}')
        self.min_candidates = min_candidates
        if not isinstance(kmeans_n_init, int) or kmeans_n_init < 1:
            raise ValueError(f'clustering: kmeans_n_init='
                             f'{kmeans_n_init!r} must be a positive integer')
        self.kmeans_n_init = kmeans_n_init
        if overcluster is not None and not overcluster >= 1:
            raise ValueError(f'clustering: overcluster={overcluster!r} '
                             'must be None or >= 1')
        if not 0 <= separation < 1:
            raise ValueError(f'clustering: separation={separation!r} '
                             'must be a share of the input side in [0, 1)')
        self.overcluster = overcluster
        self.separation = separation
        if decode not in DECODE_MODES:
            raise ValueError("clustering: decode must be 'exemplar' or "
                             f"'peaks', got {decode!r}")
        self.decode = decode
        self.peak_radius = float(peak_radius)
        self.refine_steps = int(refine_steps)
        if refine_at not in ('anchors', 'peaks'):
            raise ValueError("clustering: refine_at must be 'anchors' or "
                             f"'peaks', got {refine_at!r}")
        self.refine_at = refine_at
        self.num_pose_clusters = num_pose_clusters
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.device = device
        self.final_round = bool(final_round)

    # -------------------------------------------------------------- #
    # schedule
    # -------------------------------------------------------------- #
    def check(self, model, num_images: int, logger) -> None:
        """Check K and Q against the training set before iteration 1.

        Args:
            model (nn.Module): The unwrapped :class:`ULDEstimator`.
            num_images (int): Images of the training set.
            logger (MMLogger): Where warnings go.

        Raises:
            ValueError: K is not a positive integer, or more than the
                keypoints a round can find; more pose clusters than images.
        """
        k = getattr(model, 'num_landmarks', None)
        if not isinstance(k, int) or k < 1:
            raise ValueError(
                f'model.num_landmarks={k!r}: K must be an integer >= 1')
        per_image = int(model.test_cfg.max_keypoints)
        if k > num_images * per_image:
            raise ValueError(
                f'model.num_landmarks={k} is more than the '
                f'{num_images * per_image} keypoints a clustering round can '
                f'find ({num_images} training images x '
                f'test_cfg.max_keypoints={per_image})')
        if getattr(model, 'pose_vae', None) is None or \
                not schedule_of(model).uses('two_stage'):
            return  # no two-stage clustering in this run
        q = self.num_pose_clusters
        if q > num_images:
            raise ValueError(
                f'clustering: num_pose_clusters={q} is more than the '
                f'{num_images} training images (each pose cluster needs '
                'images)')
        if 2 * q > num_images:
            logger.warning(
                f'num_pose_clusters={q} with {num_images} training images: '
                'pose clusters of one image are likely')

    def due(self, model, stage: Stage, iteration: int) -> bool:
        """Whether a round must run before ``iteration`` of ``stage``.

        A round is due when the stage trains on pseudo-labels and the
        model holds none, or holds those of another stage, or of a round
        ``interval`` or more iterations ago, or of a later iteration (a
        bank loaded with ``load_from`` from another run).

        Args:
            model (nn.Module): The unwrapped :class:`ULDEstimator`.
            stage (Stage): The stage of ``iteration``.
            iteration (int): The 0-based iteration about to run.

        Returns:
            bool: Whether to run :meth:`run` now.
        """
        if stage.pseudo_labels is None:
            return False
        bank = model.pseudo_labels
        if bank is None:
            return True
        age = iteration - bank.iteration
        made_in = schedule_of(model).at(bank.iteration).name
        return made_in != stage.name or age >= self.interval or age < 0

    # -------------------------------------------------------------- #
    # one round
    # -------------------------------------------------------------- #
    def _build_loader(self, runner) -> DataLoader:
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

    def _extract(self, runner, with_codes: bool,
                 dense: bool = False) -> Dict[str, list]:
        """Keypoints, descriptors (and codes) of the whole training set.

        The keypoints are the detector's (dense cells or NMS peaks) or,
        with ``candidates='corners'``, the strongest Shi-Tomasi corners of
        each input inside the part that shows the image (as many as dense
        candidates, :func:`~mmuld.models.utils.candidates.select_candidates`).
        Runs without autograd (:func:`inference_pass`).
        """
        model = unwrap(runner.model)
        res = dict(
            keypoints=[], descriptors=[], image_ids=[], border=[], codes={},
            input_size=None)

        def step(data: dict) -> None:
            kind, corner_kwargs = 'dense' if dense else 'nms', {}
            if self.candidates == 'corners':
                side = float(max(data['inputs'].shape[-2:]))
                kind, corner_kwargs = 'corners', dict(
                    boxes=[valid_input_box(ds.metainfo)
                           for ds in data['data_samples']],
                    **self.corner_kwargs(side))
            out = model.extract_keypoints(
                data['inputs'], candidates=kind,
                min_keypoints=self.min_keypoints(model), **corner_kwargs)
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

        inference_pass(model, self._build_loader(runner), step)
        return res

    def _corner_window(self, side: float) -> int:
        """The structure tensor's window in pixels for an input side."""
        return window_pixels(self.corner_window, side)

    def corner_kwargs(self, side: float) -> Dict[str, float]:
        """The corner options of ``extract_keypoints(candidates='corners')``
        in pixels for an input side: ``corner_window``, ``corner_spacing``
        and ``corner_subpix``."""
        return dict(
            corner_window=self._corner_window(side),
            corner_spacing=self.corner_spacing * side,
            corner_subpix=int(round(self.corner_subpix * side)))

    def _map_pass(self, runner, fn) -> Dict[str, torch.Tensor]:
        """One pass over the training set through the descriptor maps:
        ``fn(desc_map, data)`` gives a dict of (B, ...) tensors for the
        batch's images, returned stacked in image order (``sample_idx``),
        gathered from all ranks."""
        model = unwrap(runner.model)
        local = {}

        def step(data: dict) -> None:
            res = fn(model.descriptor_map(data['inputs']), data)
            for j, ds in enumerate(data['data_samples']):
                local[int(ds.metainfo['sample_idx'])] = {
                    key: v[j].cpu() for key, v in res.items()}

        # a peak round makes several of these passes: no bar for each
        inference_pass(model, self._build_loader(runner), step,
                       progress_bar=False)
        merged = {}
        for part in gather(local):
            merged.update(part)
        order = sorted(merged)
        return {key: torch.stack([merged[i][key] for i in order])
                for key in merged[order[0]]}

    @staticmethod
    def _sample_idx(data: dict) -> List[int]:
        return [int(ds.metainfo['sample_idx']) for ds in data['data_samples']]

    def _peak_pass(self, runner, centroids: torch.Tensor,
                   with_descriptors: bool,
                   with_saliency: bool = False) -> Dict[str, torch.Tensor]:
        """One pass over the training set: the similarity peaks of
        ``centroids`` ((C, D), or (N, C, D) per image by ``sample_idx``)
        in every image, gathered from all ranks in image order (rank 0's
        centroids are used everywhere); ``with_saliency`` adds the image's
        corner response at each peak (``corner_rank``)."""
        centroids = broadcast(centroids)
        model = unwrap(runner.model)

        def peaks(desc_map: torch.Tensor, data: dict) -> dict:
            side = float(max(data['data_samples'][0].metainfo['input_size']))
            cents = centroids if centroids.dim() == 2 else \
                centroids[self._sample_idx(data)]
            res = similarity_peaks(
                desc_map, cents.to(desc_map.device), model.stride,
                radius=self.peak_radius * side,
                border=model.test_cfg.border,
                with_descriptors=with_descriptors)
            if with_saliency:
                res['saliency'] = corner_strength(
                    data['inputs'], res['keypoints'],
                    self._corner_window(side))
            return res

        return self._map_pass(runner, peaks)

    def _sample_pass(self, runner, points: torch.Tensor) -> torch.Tensor:
        """One pass over the training set: the (N, K, D) L2-normalised
        descriptors of every image at its ``points`` (N, K, 2) input
        pixels, gathered from all ranks in image order."""
        points = broadcast(points)
        stride = unwrap(runner.model).stride

        def sample(desc_map: torch.Tensor, data: dict) -> dict:
            at = points[self._sample_idx(data)].to(desc_map)
            return dict(at=sample_descriptors(desc_map, at, stride))

        return self._map_pass(runner, sample)['at']

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

    def _peak_round(self, runner, model, parts: list,
                    codes: Optional[torch.Tensor], num_images: int,
                    side: float) -> tuple:
        """``decode='peaks'``: cluster the candidates, keep K peaked
        centroids and place the landmarks at their peaks (every rank runs
        the decoding passes; rank 0's centroids are used)."""
        desc = torch.cat([t for p in parts for t in p['descriptors']])
        # the landmarks chosen at the first round of the run are kept;
        # later rounds re-estimate their centroids (where refine_at says)
        init = anchors = None
        if model.pseudo_labels is not None and model.uld_centroids.numel():
            init = model.uld_centroids.float().mean(0).cpu()
            anchors = model.pseudo_labels.anchors
            if self.refine_at == 'peaks':
                anchors = None
            else:
                if anchors is None:
                    runner.logger.warning(
                        'clustering: the pseudo-labels hold no anchors '
                        '(written before they were kept, or with '
                        "refine_at='peaks'): the landmarks are anchored at "
                        "the last round's pseudo-labels from this round on")
                    anchors = model.pseudo_labels.keypoints
                anchors = anchors.float().cpu()
        # only the round that chooses the landmarks ranks them
        rank = self.corner_rank and init is None
        bank, cents, stats = peak_pseudo_labels(
            desc, num_images, model.num_landmarks,
            lambda c, d: self._peak_pass(runner, c, d, rank), codes=codes,
            num_pose_clusters=self.num_pose_clusters, seed=self.seed,
            device=self.device, n_init=self.kmeans_n_init,
            overcluster=self.overcluster,
            separation=self.separation * side,
            refine_steps=self.refine_steps, init_centroids=init,
            anchors=anchors, sample=lambda p: self._sample_pass(runner, p))
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

    def _kmeans_round(self, model, parts: list,
                      codes: Optional[torch.Tensor], num_images: int,
                      side: float) -> tuple:
        """``decode='exemplar'``: K-means (or two-stage) clustering of the
        candidates, exemplar landmarks (rank 0 only)."""
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
        return bank.state_dict(), cents, stats

    def run(self,
            runner,
            stage: Union[Stage, str],
            iteration: Optional[int] = None) -> PseudoLabelBank:
        """Extract, gather, cluster, broadcast and save pseudo-labels.

        The bank and the centroids go to the model (its buffers).

        Args:
            runner (Runner): The runner, or anything with its ``model``,
                ``train_dataloader.dataset``, ``iter``, ``work_dir`` and
                ``logger``.
            stage (Stage | str): The stage the round is for (a name: its
                first stage of that name in the model's stage table); its
                ``pseudo_labels`` say K-means or two-stage clustering.
            iteration (int, optional): Iterations the weights have been
                trained for; default ``runner.iter`` (a round before an
                iteration), ``max_iters`` for the final round.

        Returns:
            PseudoLabelBank: The round's pseudo-labels.
        """
        model = unwrap(runner.model)
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
        parts = gather(self._extract(runner, with_codes, dense=dense))
        codes = self._merge_codes(parts, num_images) if with_codes else None
        side = max(p['input_size'] or 0.0 for p in parts)
        if self.decode == 'peaks':
            result = self._peak_round(runner, model, parts, codes,
                                      num_images, side)
            state, cents, stats = broadcast(result)
        else:
            state, cents, stats = on_rank0(lambda: self._kmeans_round(
                model, parts, codes, num_images, side))
        state.update(round=round_index, iteration=iteration)
        bank = PseudoLabelBank.from_state_dict(state)
        model.set_pseudo_labels(bank)
        model.set_centroids(cents['centroids'], cents['pose_centroids'])
        runner.logger.info(f'clustering round {round_index}: '
                           f'{summarize(stats)}')
        for warning in health_warnings(stats, model.num_landmarks):
            runner.logger.warning(
                f'clustering round {round_index}: {warning}')
        self._save(runner.work_dir, bank, stage, round_index, iteration,
                   stats)
        return bank

    @staticmethod
    def _save(work_dir: str, bank: PseudoLabelBank, stage: Stage,
              round_index: int, iteration: int, stats: dict) -> None:
        """``pseudo_labels/round_XXX_iter_N.npz`` and ``.json`` (rank 0)."""
        if get_rank() != 0:
            return
        out_dir = osp.join(work_dir, 'pseudo_labels')
        mmengine.mkdir_or_exist(out_dir)
        stem = osp.join(out_dir, f'round_{round_index:03d}_iter_{iteration}')
        bank.save(stem + '.npz')
        mmengine.dump(
            dict(round=round_index, iteration=iteration, stage=stage.name,
                 **stats), stem + '.json', indent=1)
