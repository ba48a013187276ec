# Copyright (c) mmuld contributors. All rights reserved.
"""Fit (or reload) the K-means centroids of the ZeroShot baseline."""
import copy
import hashlib
import math
import os.path as osp
import time
from typing import Optional

import mmengine
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmuld.registry import HOOKS
from ..dist_pass import gather, inference_pass, on_rank0

CENTROIDS_FORMAT = 'mmuld.zeroshot_centroids.v1'


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-1 of the model's state dict (without the centroids).

    The SD weights are not part of the state dict of
    ``StableDiffusionBackbone``; the fingerprint covers the aggregator (and
    any other parameter / buffer), i.e. what a checkpoint changes.

    Args:
        model (nn.Module): The (unwrapped) model.

    Returns:
        str: Hex digest.
    """
    sha = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        if name.endswith('zs_centroids'):
            continue
        sha.update(name.encode())
        sha.update(str(tuple(t.shape)).encode())
        sha.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return sha.hexdigest()


def fit_signature(model: torch.nn.Module,
                  dataloader_cfg: Optional[dict],
                  extra: object = None) -> str:
    """SHA-1 of what the fitted centroids depend on besides the weights.

    Args:
        model (nn.Module): The :class:`ZeroShotEstimator`.
        dataloader_cfg (dict, optional): The fit dataloader config.
        extra (object): Other settings (e.g. the K-means config).

    Returns:
        str: Hex digest of K, samples per image, how they are picked
        (random or corners, with the corner settings), seed, the dataset
        config (with the content of its ``LoadRoIs`` RoI files) and
        ``extra``.
    """
    dataset = (dataloader_cfg or {}).get('dataset', None)
    sampling = tuple(
        getattr(model, name, None)
        for name in ('samples', 'corner_window', 'corner_spacing'))
    desc = repr(
        (model.num_landmarks, model.samples_per_image, model.seed, sampling,
         _canonical(dataset), _canonical(extra), _roi_file_hashes(dataset)))
    return hashlib.sha1(desc.encode()).hexdigest()


def _roi_file_hashes(x) -> list:
    """SHA-1 of the content of every ``roi_file`` of a (dataset) config."""
    out = []
    if isinstance(x, dict):
        path = x.get('roi_file')
        if isinstance(path, str) and osp.isfile(path):
            with open(path, 'rb') as f:
                out.append(hashlib.sha1(f.read()).hexdigest())
        for v in x.values():
            out += _roi_file_hashes(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            out += _roi_file_hashes(v)
    return out


def _canonical(x):
    if isinstance(x, dict):
        return tuple(sorted((str(k), _canonical(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_canonical(v) for v in x)
    return x if isinstance(x, (int, float, str, bool, type(None))) \
        else repr(x)


@HOOKS.register_module()
class ZeroShotFitHook(Hook):
    """Give a :class:`ZeroShotEstimator` its centroids before testing.

    In ``before_test``:

    1. if ``centroids_file`` exists and was made for the same model
       (K, descriptor size and weight fingerprint match), load it: a second
       ``tools/test.py`` run does not recompute anything;
    2. else, if the model already holds centroids (from a checkpoint) and
       ``refit`` is False, keep them;
    3. else run the model over ``fit_dataloader`` (the training split),
       sample ``samples_per_image`` RoI descriptors per image, cluster them
       into K centroids with :func:`mmuld.clustering.kmeans` (GPU when
       available), save them to ``centroids_file`` and load them into the
       model.

    The file is a ``torch.save`` of a plain dict ``{'centroids': Tensor
    (K, D), 'meta': dict}`` (``meta``: format, num_landmarks, desc_dim,
    samples_per_image, seed, num_images, num_points, roi_fallbacks,
    inertia, fingerprint (:func:`model_fingerprint`), signature
    (:func:`fit_signature`), load_from, created). A file whose fingerprint
    or signature differs from the current model / fit config is refitted
    (with a warning) instead of being reused.

    Args:
        fit_dataloader (dict, optional): Dataloader config of the training
            split (built with ``runner.build_dataloader``). None: the
            config's ``train_dataloader`` with a non-shuffling
            ``DefaultSampler``.
        centroids_file (str, optional): Where centroids are saved / reused.
            Relative paths are relative to the work dir. Defaults to
            ``work_dir/zeroshot_centroids.pth``.
        refit (bool): Always recompute (and overwrite the file).
        max_points (int, optional): Keep at most about this many
            descriptors for K-means (a fixed-seed random subset of
            ``ceil(max_points / len(dataset))`` per image, then trimmed):
            bounds the memory on large datasets. None: all of them.
        kmeans_cfg (dict, optional): Extra :func:`kmeans` arguments
            (``n_iter``, ``minibatch``, ``batch_size``, ``device``, ...).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 fit_dataloader: Optional[dict] = None,
                 centroids_file: Optional[str] = None,
                 refit: bool = False,
                 max_points: Optional[int] = None,
                 kmeans_cfg: Optional[dict] = None) -> None:
        if max_points is not None and max_points < 1:
            raise ValueError(f'max_points must be >= 1, got {max_points}')
        self.fit_dataloader = fit_dataloader
        self.centroids_file = centroids_file
        self.refit = refit
        self.max_points = max_points
        self.kmeans_cfg = dict(kmeans_cfg or {})
        #: how the centroids were obtained in the last ``before_test``:
        #: 'file', 'checkpoint' or 'fitted'
        self.source: Optional[str] = None
        #: number of K-means fits run by this hook
        self.num_fits = 0

    @staticmethod
    def _model(runner: Runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        for name in ('sample_descriptors_in_roi', 'set_centroids', 'fit'):
            if not hasattr(model, name):
                raise TypeError(
                    'ZeroShotFitHook needs a ZeroShotEstimator, got '
                    f'{type(model).__name__}')
        return model

    def resolve_file(self, runner: Runner) -> str:
        """Absolute path of the centroids file."""
        path = self.centroids_file or 'zeroshot_centroids.pth'
        if not osp.isabs(path):
            path = osp.join(runner.work_dir, path)
        return path

    # -------------------------------------------------------------- #
    def before_test(self, runner: Runner) -> None:
        model = self._model(runner)
        path = self.resolve_file(runner)
        fingerprint = model_fingerprint(model)
        loader_cfg = self._loader_cfg(runner)
        signature = fit_signature(model, loader_cfg,
                                  (self.max_points, self.kmeans_cfg))
        if not self.refit and osp.isfile(path):
            reason = self._try_load(model, path, fingerprint, signature)
            if reason is None:
                self.source = 'file'
                runner.logger.info(
                    f'ZeroShot: reusing the centroids of {path} (K='
                    f'{model.num_landmarks}); delete the file or set '
                    'refit=True to recompute them')
                return
            runner.logger.warning(
                f'ZeroShot: not reusing {path} ({reason}); refitting')
        if not self.refit and model.is_fitted:
            self.source = 'checkpoint'
            runner.logger.info('ZeroShot: using the centroids stored in the '
                               'loaded checkpoint')
            return
        self._fit(runner, model, path, fingerprint, signature, loader_cfg)
        self.source = 'fitted'

    @staticmethod
    def _try_load(model, path: str, fingerprint: str,
                  signature: str) -> Optional[str]:
        """Load the file into the model; return why not, or None."""
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:  # corrupt file: refit
            return f'cannot read it: {type(e).__name__}: {e}'
        if not isinstance(state, dict) or 'centroids' not in state:
            return 'no "centroids" entry'
        cents = state['centroids']
        meta = state.get('meta', {})
        if cents.dim() != 2 or cents.shape[0] != model.num_landmarks:
            return (f'it has {tuple(cents.shape)} centroids, the model '
                    f'K={model.num_landmarks}')
        dim = getattr(model.backbone, 'out_channels', cents.shape[1])
        if cents.shape[1] != dim:
            return (f'descriptor size {cents.shape[1]} != backbone '
                    f'out_channels {dim}')
        if meta.get('fingerprint') not in (None, fingerprint):
            return 'it was fitted with other model weights'
        if meta.get('signature') not in (None, signature):
            return ('it was fitted with another K / samples_per_image / seed '
                    '/ fit dataset config')
        model.set_centroids(cents)
        return None

    def _loader_cfg(self, runner: Runner) -> Optional[dict]:
        cfg = self.fit_dataloader
        if cfg is None:
            cfg = runner.cfg.get('train_dataloader', None)
            if cfg is None:
                return None
            cfg = copy.deepcopy(cfg)
            cfg['sampler'] = dict(
                type='DefaultSampler', shuffle=False, round_up=False)
        return copy.deepcopy(cfg)

    def _extract(self, runner: Runner, model, loader_cfg: dict) -> dict:
        loader = runner.build_dataloader(copy.deepcopy(loader_cfg))
        descs, num_images = [], 0
        fallbacks0 = model.num_roi_fallbacks
        # bound the memory: keep ~max_points / len(dataset) per image
        keep = None
        if self.max_points is not None and len(loader.dataset):
            keep = max(1, math.ceil(self.max_points / len(loader.dataset)))
        gen = torch.Generator().manual_seed(model.seed)

        def step(data: dict) -> None:
            nonlocal num_images
            _, desc, valid = model.sample_descriptors_in_roi(
                data['inputs'], data['data_samples'])
            for d, v in zip(desc.cpu(), valid.cpu()):
                d = d[v]
                if keep is not None and d.shape[0] > keep:
                    d = d[torch.randperm(d.shape[0], generator=gen)[:keep]]
                descs.append(d)
            num_images += desc.shape[0]

        inference_pass(model, loader, step)
        return dict(
            descriptors=torch.cat(descs) if descs else torch.zeros(0, 0),
            num_images=num_images,
            fallbacks=model.num_roi_fallbacks - fallbacks0)

    def _fit(self, runner: Runner, model, path: str, fingerprint: str,
             signature: str, loader_cfg: Optional[dict]) -> None:
        if loader_cfg is None:
            raise ValueError(
                'ZeroShotFitHook needs `fit_dataloader` (the training split) '
                'or a `train_dataloader` in the config to fit the centroids')
        runner.logger.info(
            f'ZeroShot: sampling {model.samples_per_image} RoI descriptors '
            'per training image for K-means')
        parts = gather(self._extract(runner, model, loader_cfg))
        centroids = on_rank0(lambda: self._cluster(
            runner, model, parts, path, fingerprint, signature))
        model.set_centroids(centroids)
        self.num_fits += 1

    def _cluster(self, runner: Runner, model, parts: list, path: str,
                 fingerprint: str, signature: str) -> torch.Tensor:
        """K-means over the gathered descriptors, saved to ``path``
        (rank 0)."""
        descs = [
            p['descriptors'] for p in parts if p['descriptors'].numel()
        ]
        desc = torch.cat(descs) if descs else torch.zeros(0, 1)
        num_images = sum(p['num_images'] for p in parts)
        fallbacks = sum(p['fallbacks'] for p in parts)
        if desc.shape[0] < model.num_landmarks:
            raise ValueError(
                f'only {desc.shape[0]} descriptors from {num_images} '
                f'training images for K={model.num_landmarks} clusters')
        if self.max_points is not None and desc.shape[0] > \
                self.max_points:
            gen = torch.Generator().manual_seed(model.seed)
            keep = torch.randperm(desc.shape[0], generator=gen)
            desc = desc[keep[:self.max_points]]
        t0 = time.time()
        res = model.fit(desc, **self.kmeans_cfg)
        runner.logger.info(
            f'ZeroShot: K-means (K={model.num_landmarks}) on '
            f'{desc.shape[0]} descriptors of {num_images} images '
            f'({fallbacks} without a usable RoI) in '
            f'{time.time() - t0:.1f}s, inertia {res.inertia:.4g}')
        state = dict(
            centroids=res.centroids.detach().cpu().float(),
            meta=dict(
                format=CENTROIDS_FORMAT,
                num_landmarks=model.num_landmarks,
                desc_dim=int(res.centroids.shape[1]),
                samples_per_image=model.samples_per_image,
                seed=model.seed,
                num_images=num_images,
                num_points=int(desc.shape[0]),
                roi_fallbacks=fallbacks,
                inertia=float(res.inertia),
                fingerprint=fingerprint,
                signature=signature,
                load_from=str(runner.cfg.get('load_from', None)),
                created=time.strftime('%Y-%m-%d %H:%M:%S')))
        mmengine.mkdir_or_exist(osp.dirname(path))
        torch.save(state, path)
        runner.logger.info(
            f'ZeroShot: centroids saved to {path}; the next run with '
            'the same work dir reuses them')
        return state['centroids']
