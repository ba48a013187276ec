# Copyright (c) mmuld contributors. All rights reserved.
"""Inferencer: discovered landmarks on images, folders and videos."""
import json
import logging
import mimetypes
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose, pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmengine.visualization import Visualizer
from rich.progress import track

from mmuld.evaluation.metrics.landmark_dump_metric import LANDMARKS_FORMAT
from mmuld.registry import INFERENCERS, VISUALIZERS
from mmuld.rois import (AnnotationRoIProvider, BaseRoIProvider,
                        FallbackRoIProvider, MMDetRoIProvider,
                        WholeImageRoIProvider, build_roi_provider)
from .inference import get_test_pipeline_cfg, init_model, load_config
from mmuld.utils.landmark_io import clean_landmarks, to_bgr_uint8

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v')
InputType = Union[str, np.ndarray]


def _read_image(path: str) -> Optional[np.ndarray]:
    """BGR image, or None when the file cannot be decoded (empty,
    truncated, not an image)."""
    try:
        img = mmcv.imread(path)
    except (cv2.error, OSError, ValueError):
        return None
    return img if img is not None and img.size else None


def _is_video(path: str) -> bool:
    kind = mimetypes.guess_type(path)[0] or ''
    return kind.startswith('video') or path.lower().endswith(VIDEO_EXTENSIONS)


def _is_image(path: str) -> bool:
    kind = mimetypes.guess_type(path)[0] or ''
    return kind.startswith('image') or path.lower().endswith(IMG_EXTENSIONS)


def build_inference_roi_provider(roi: Union[str, dict, BaseRoIProvider],
                                 device: str = 'cpu') -> BaseRoIProvider:
    """RoI provider of the inferencer.

    Args:
        roi (str | dict | BaseRoIProvider): ``'whole'`` (the whole image),
            ``'annotation'`` (boxes given with ``bboxes=`` at call time),
            ``dict(det_config, det_checkpoint=None, classes=None,
            score_thr=0.3)`` (best box of an mmdet detector, the whole
            image when it finds nothing), a RoI provider config with a
            ``type`` key, or a provider.
        device (str): Device of a detector.

    Returns:
        BaseRoIProvider: The provider.
    """
    if isinstance(roi, BaseRoIProvider) or (callable(roi)
                                            and not isinstance(roi, dict)):
        return roi
    if roi == 'whole':
        return WholeImageRoIProvider(name='whole_image')
    if roi == 'annotation':
        return AnnotationRoIProvider(
            bbox_key='bbox', bbox_format='xyxy', name='annotation')
    if isinstance(roi, dict) and 'type' in roi:
        return build_roi_provider(dict(roi))
    if isinstance(roi, dict) and 'det_config' in roi:
        unknown = set(roi) - {
            'det_config', 'det_checkpoint', 'classes', 'score_thr'
        }
        if unknown:
            raise ValueError(f'unknown detector RoI keys {sorted(unknown)}')
        det_config = roi['det_config']
        if isinstance(det_config, str) and not osp.isfile(det_config):
            raise FileNotFoundError(
                f'detector config not found: {det_config}')
        ckpt = roi.get('det_checkpoint')
        if ckpt is not None and not osp.isfile(ckpt):
            raise FileNotFoundError(f'detector checkpoint not found: {ckpt}')
        detector = MMDetRoIProvider(
            det_config,
            ckpt,
            device=device,
            classes=roi.get('classes'),
            score_thr=roi.get('score_thr', 0.3),
            name='detector')
        return FallbackRoIProvider(
            [detector, WholeImageRoIProvider(name='whole_image')],
            name='detector_or_whole_image')
    raise ValueError("roi must be 'whole', 'annotation', a dict with "
                     "'det_config' (mmdet detector) or a RoI provider "
                     f'config with a "type" key, got {roi!r}')


@INFERENCERS.register_module(name=['ULDInferencer', 'uld'])
class ULDInferencer(BaseInferencer):
    """Landmark discovery on images, folders, videos and arrays.

    For every input image: RoI (whole image, given box or mmdet detector)
    -> the config's test pipeline (``LoadImage``, ``GetBBoxCenterScale``,
    ``TopdownAffine``, ``PackPoseInputs``) -> ``model.test_step`` ->
    :class:`ULDLocalVisualizer` (one fixed colour per landmark).

    Example::

        >>> inferencer = ULDInferencer(
        ...     'configs/dldpp_face_samples_demo.py',
        ...     'work_dirs/dldpp_face_samples_demo/stage4_dldpp.pth',
        ...     roi=dict(det_config='rtmdet_tiny.py', det_checkpoint=None))
        >>> out = inferencer('data/face_samples/300w', out_dir='vis')
        >>> out['predictions'][0]['keypoints']  # K x [x, y] image pixels

    Args:
        model (str | Config): Model config path or config.
        weights (str, optional): Checkpoint path.
        device (str, optional): Device; None picks the available one.
        roi (str | dict | BaseRoIProvider): See
            :func:`build_inference_roi_provider`. Defaults to ``'whole'``.
        cfg_options (dict, optional): Config overrides, e.g.
            ``{'model.backbone.pretrained': 'checkpoints/sd15'}``.
        scope (str): Default scope. Defaults to ``'mmuld'``.
        show_progress (bool): Show a progress bar. Defaults to True.
    """

    preprocess_kwargs: set = {'bboxes'}
    forward_kwargs: set = set()
    visualize_kwargs: set = {
        'return_vis', 'show', 'wait_time', 'draw_bbox', 'radius', 'thickness',
        'kpt_thr', 'vis_out_dir'
    }
    postprocess_kwargs: set = {'return_datasamples'}

    def __init__(self,
                 model: Union[str, Config, ConfigDict],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 roi: Union[str, dict, BaseRoIProvider] = 'whole',
                 cfg_options: Optional[dict] = None,
                 scope: str = 'mmuld',
                 show_progress: bool = True) -> None:
        from mmuld.utils import register_all_modules
        register_all_modules(init_default_scope=False)
        cfg = load_config(model, cfg_options)
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.roi_mode = roi if isinstance(roi, str) else 'custom'
        if isinstance(roi, str) and roi not in ('whole', 'annotation'):
            raise ValueError("roi must be 'whole', 'annotation' or a dict, "
                             f'got {roi!r}')
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(
                cfg, weights, device, scope, show_progress=show_progress)
        self.roi_provider = build_inference_roi_provider(roi, device)
        self._whole = WholeImageRoIProvider(name='whole_image')
        self.num_landmarks = int(
            getattr(self.model, 'num_landmarks', 0)
            or self.cfg.model.get('num_landmarks', 0))

    # ------------------------------------------------------------------ #
    # initialisation
    # ------------------------------------------------------------------ #
    def _init_model(self, cfg: Config, weights: Optional[str],
                    device: str = 'cpu') -> nn.Module:
        return init_model(cfg, weights, device)

    def _init_pipeline(self, cfg: Config) -> Compose:
        return Compose(get_test_pipeline_cfg(cfg))

    def _init_collate(self, cfg: Config):
        return pseudo_collate

    def _init_visualizer(self, cfg: Config) -> Visualizer:
        vis_cfg = dict(
            cfg.get('visualizer') or dict(type='ULDLocalVisualizer'))
        vis_cfg.pop('vis_backends', None)
        vis_cfg.pop('save_dir', None)
        if vis_cfg.get('type') in ('ULDLocalVisualizer',
                                   'mmuld.ULDLocalVisualizer'):
            vis_cfg['num_landmarks'] = int(self.model.num_landmarks)
        name = f'uld_inferencer_{id(self)}'
        while Visualizer.check_instance_created(name):
            name += '_'
        vis_cfg['name'] = name
        visualizer = VISUALIZERS.build(vis_cfg)
        visualizer.set_dataset_meta(self.model.dataset_meta or {})
        return visualizer

    # ------------------------------------------------------------------ #
    # inputs
    # ------------------------------------------------------------------ #
    def _inputs_to_items(self, inputs) -> Tuple[Iterator[dict], int, Optional[
            dict]]:
        """Expand inputs into per-image items (lazy for videos).

        Returns:
            tuple: (iterator of dicts with ``img``, ``img_path``,
            ``frame_index``, ``name``; number of items; video info or None).
        """
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, str):
            if osp.isdir(inputs):
                files = sorted(
                    osp.join(inputs, f) for f in os.listdir(inputs)
                    if osp.isfile(osp.join(inputs, f)) and _is_image(f))
                if not files:
                    raise ValueError(f'no image files in folder {inputs}')
                inputs = files
            elif not osp.isfile(inputs):
                raise FileNotFoundError(f'input not found: {inputs}')
            elif _is_video(inputs):
                return self._video_items(inputs)
            elif _is_image(inputs):
                inputs = [inputs]
            else:
                raise ValueError(f'input {inputs} is neither an image, a '
                                 'video nor a folder')
        if not isinstance(inputs, (list, tuple)):
            raise TypeError('inputs must be a path, an array or a list, got '
                            f'{type(inputs).__name__}')
        for x in inputs:
            if isinstance(x, str) and not osp.isfile(x):
                raise FileNotFoundError(f'input image not found: {x}')
            if not isinstance(x, (str, np.ndarray)):
                raise TypeError('list inputs must be image paths or arrays, '
                                f'got {type(x).__name__}')
        # grey, BGRA and float arrays -> BGR uint8; bad ones fail here
        inputs = [
            to_bgr_uint8(x, f'input {i}') if isinstance(x, np.ndarray) else x
            for i, x in enumerate(inputs)
        ]

        single = len(inputs) == 1

        def gen():
            for i, x in enumerate(inputs):
                if isinstance(x, str):
                    img = _read_image(x)
                    if img is None:
                        if single:
                            raise ValueError(f'cannot read image {x}')
                        # one bad file of a folder or list: skip it, go on
                        print_log(f'skipping {x}: cannot read the image',
                                  logger='current', level=logging.WARNING)
                        continue
                    yield dict(img=img, img_path=x, frame_index=None,
                               name=osp.basename(x), index=i)
                else:
                    yield dict(img=x, img_path=None, frame_index=None,
                               name=f'{i:06d}.jpg', index=i)

        return gen(), len(inputs), None

    @staticmethod
    def _video_items(path: str) -> Tuple[Iterator[dict], int, dict]:
        try:
            video = mmcv.VideoReader(path)
            frames = len(video)
        except (ValueError, OSError, cv2.error) as e:
            raise ValueError(f'cannot read video {path}: not a video file '
                             f'OpenCV can decode ({e})') from None
        if frames <= 0 or not video.opened:
            raise ValueError(f'cannot read video {path}: no frames (not a '
                             'video file OpenCV can decode)')
        info = dict(path=path, fps=video.fps or 25.0, name=osp.basename(path))

        def gen():
            for i, frame in enumerate(video):
                if frame is None:
                    break
                yield dict(img=frame, img_path=path, frame_index=i,
                           name=f'{osp.splitext(info["name"])[0]}_{i:06d}.jpg',
                           index=i)

        return gen(), frames, info

    # ------------------------------------------------------------------ #
    # stages
    # ------------------------------------------------------------------ #
    def get_roi(self, img: np.ndarray,
                bbox: Optional[Sequence[float]] = None,
                img_path: Optional[str] = None) -> Tuple[np.ndarray, str]:
        """RoI of one image.

        Args:
            img (np.ndarray): BGR image.
            bbox (Sequence[float], optional): A given box (x1, y1, x2, y2);
                it wins over the provider.
            img_path (str, optional): For log messages.

        Returns:
            tuple: (box (4,) float32, source name).
        """
        meta = dict(img_path=img_path or '<array>')
        if bbox is not None:
            roi = AnnotationRoIProvider(bbox_format='xyxy')(img,
                                                            dict(bbox=bbox))
            if roi is None:
                raise ValueError(f'invalid box {bbox} for {meta["img_path"]}')
            return roi, 'given'
        if self.roi_mode == 'annotation':
            raise ValueError("roi='annotation' needs a box per input: call "
                             'the inferencer with bboxes=[[x1, y1, x2, y2], '
                             f'...] (none for {meta["img_path"]})')
        roi = self.roi_provider(img, meta)
        source = getattr(self.roi_provider, 'last_source', None) or getattr(
            self.roi_provider, 'name', 'roi')
        if roi is None:
            print_log(f'{meta["img_path"]}: no RoI, using the whole image',
                      logger='current', level=30)
            roi, source = self._whole(img), 'whole_image'
        return roi, source

    def preprocess(self,
                   inputs: Iterator[dict],
                   batch_size: int = 1,
                   bboxes: Optional[Sequence] = None) -> Iterator[tuple]:
        """RoI + test pipeline + collate, per batch.

        Args:
            inputs (Iterator[dict]): Items from :meth:`_inputs_to_items`.
            batch_size (int): Batch size.
            bboxes (Sequence, optional): One box (x1, y1, x2, y2) or None
                per input image / frame.

        Yields:
            tuple: (collated data for ``test_step``, list of items).
        """
        chunk: List[dict] = []
        for n, item in enumerate(inputs):
            # the input's own index: skipped files keep the boxes aligned
            idx = item.get('index', n)
            box = None
            if bboxes is not None:
                if idx >= len(bboxes):
                    raise ValueError(f'got {len(bboxes)} bboxes for more '
                                     'inputs')
                box = bboxes[idx]
            roi, source = self.get_roi(item['img'], box, item['img_path'])
            item.update(bbox=roi, roi_source=source)
            data = dict(
                img=item['img'],
                img_path=item['img_path'] or item['name'],
                bbox=roi[None].astype(np.float32),
                bbox_score=np.ones(1, dtype=np.float32),
                id=idx,
                img_id=idx)
            item['data'] = self.pipeline(data)
            chunk.append(item)
            if len(chunk) == batch_size:
                yield self.collate_fn([c.pop('data') for c in chunk]), chunk
                chunk = []
        if chunk:
            yield self.collate_fn([c.pop('data') for c in chunk]), chunk

    def visualize(self,
                  inputs: List[dict],
                  preds: list,
                  return_vis: bool = False,
                  show: bool = False,
                  wait_time: float = 0,
                  draw_bbox: bool = True,
                  radius: Optional[int] = None,
                  thickness: int = 1,
                  kpt_thr: float = 0.5,
                  vis_out_dir: str = '') -> List[np.ndarray]:
        """Draw the landmarks (one fixed colour each) and the RoI.

        Args:
            inputs (list[dict]): Items of the batch.
            preds (list[PoseDataSample]): Predictions.
            return_vis (bool): Return the drawn images (RGB).
            show (bool): Show them in a window.
            wait_time (float): Display time (s).
            draw_bbox (bool): Draw the RoI.
            radius (int, optional): Keypoint radius; None: 0.8 % of the
                longer image side (at least 3).
            thickness (int): Line width.
            kpt_thr (float): Landmarks with ``keypoints_visible`` below
                this (0: no exemplar) are not drawn.
            vis_out_dir (str): Folder for the drawn images (a video for a
                video input). Empty: nothing written.

        Returns:
            list[np.ndarray]: RGB images when ``return_vis``, else [].
        """
        if not (return_vis or show or vis_out_dir):
            return []
        self.visualizer.line_width = thickness
        out = []
        for item, pred in zip(inputs, preds):
            img = mmcv.bgr2rgb(item['img'])
            self.visualizer.radius = radius if radius is not None else max(
                3, int(round(0.008 * max(img.shape[:2]))))
            drawn = self.visualizer.add_datasample(
                item['name'],
                img,
                pred,
                draw_gt=False,
                draw_bbox=draw_bbox,
                show=show,
                wait_time=wait_time,
                kpt_thr=kpt_thr)
            if vis_out_dir:
                self._save_vis(drawn, vis_out_dir, item)
            if return_vis:
                out.append(drawn)
        return out

    def _save_vis(self, drawn: np.ndarray, vis_out_dir: str,
                  item: dict) -> None:
        os.makedirs(vis_out_dir, exist_ok=True)
        bgr = mmcv.rgb2bgr(drawn)
        if self._video is None:
            mmcv.imwrite(bgr, osp.join(vis_out_dir, item['name']))
            return
        if self._video.get('writer') is None:
            name = osp.splitext(self._video['name'])[0] + '.mp4'
            self._video['output_file'] = osp.join(vis_out_dir, name)
            self._video['writer'] = cv2.VideoWriter(
                self._video['output_file'], cv2.VideoWriter_fourcc(*'mp4v'),
                self._video['fps'], (bgr.shape[1], bgr.shape[0]))
        self._video['writer'].write(bgr)

    def postprocess(self,
                    preds: list,
                    visualization: List[np.ndarray],
                    return_datasamples: bool = False,
                    inputs: Optional[List[dict]] = None) -> Dict[str, list]:
        """Predictions as JSON-serialisable dicts.

        Args:
            preds (list[PoseDataSample]): Predictions.
            visualization (list[np.ndarray]): Drawn images.
            return_datasamples (bool): Return the data samples instead.
            inputs (list[dict], optional): Items of the batch.

        Returns:
            dict: ``predictions``: per image ``img_path`` (or
            ``frame_index`` for videos), ``keypoints`` (K x [x, y]),
            ``keypoint_scores`` (K), ``keypoints_visible`` (K; 1: found
            and inside the image, 0: not, reported at (0, 0) with score 0,
            see :func:`clean_landmarks`), ``bbox`` [x1, y1, x2, y2],
            ``roi_source``; ``visualization``.
        """
        results = []
        for i, pred in enumerate(preds):
            if return_datasamples:
                results.append(pred)
                continue
            item = inputs[i] if inputs is not None else {}
            inst = pred.pred_instances
            kpts = np.asarray(inst.keypoints)[0, :, :2]
            scores = np.asarray(inst.keypoint_scores).reshape(-1)
            vis = np.asarray(inst.keypoints_visible).reshape(-1)
            shape = item['img'].shape[:2] if 'img' in item else \
                pred.metainfo.get('ori_shape')
            if shape is not None:
                # one convention everywhere: visible = found and inside
                # the image; not visible = (0, 0), score 0
                kpts, scores, vis = clean_landmarks(kpts, scores, vis, shape)
            res = dict(
                img_path=item.get('img_path'),
                keypoints=kpts.astype(float).tolist(),
                keypoint_scores=scores.astype(float).tolist(),
                keypoints_visible=(vis > 0).astype(int).tolist(),
                bbox=[float(v) for v in item['bbox']]
                if 'bbox' in item else None,
                roi_source=item.get('roi_source'))
            if item.get('frame_index') is not None:
                res['frame_index'] = int(item['frame_index'])
            if 'pose_labels' in inst:
                res['pose_label'] = int(np.asarray(inst.pose_labels)[0])
            results.append(res)
        return dict(predictions=results, visualization=visualization)

    # ------------------------------------------------------------------ #
    # call
    # ------------------------------------------------------------------ #
    def __call__(self,
                 inputs: Union[InputType, Sequence[InputType]],
                 batch_size: int = 1,
                 out_dir: Optional[str] = None,
                 **kwargs) -> dict:
        """Run the model on images, a folder, a video or arrays.

        Args:
            inputs (str | ndarray | list): Image path, folder, video file,
                array or a list of paths / arrays. Arrays: BGR, grey
                (H, W) or (H, W, 1), BGRA; uint8, or float in [0, 1] or
                [0, 255] (see :func:`to_bgr_uint8`); others are refused.
            batch_size (int): Batch size. Defaults to 1.
            out_dir (str, optional): Writes ``landmarks.json`` (the
                :class:`LandmarkDumpMetric` format, plus ``frame_index`` and
                ``roi_source``) and ``visualizations/`` (images, or an mp4
                for a video input).
            **kwargs: ``bboxes``; ``show``, ``wait_time``, ``draw_bbox``,
                ``radius``, ``thickness``, ``kpt_thr``, ``return_vis``,
                ``vis_out_dir``; ``return_datasamples``.

        Returns:
            dict: ``predictions`` (one dict per image / frame, see
            :meth:`postprocess`) and ``visualization`` (RGB images when
            ``return_vis``).
        """
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if out_dir is not None:
            kwargs.setdefault('vis_out_dir', osp.join(out_dir,
                                                      'visualizations'))
        pre_kw, fwd_kw, vis_kw, post_kw = self._dispatch_kwargs(**kwargs)
        items, total, self._video = self._inputs_to_items(inputs)
        if pre_kw.get('bboxes') is not None and len(pre_kw['bboxes']) != \
                total:
            raise ValueError(f'got {len(pre_kw["bboxes"])} bboxes for '
                             f'{total} inputs')
        if isinstance(self.roi_provider, FallbackRoIProvider):
            self.roi_provider.reset()
        batches = self.preprocess(items, batch_size=batch_size, **pre_kw)
        if self.show_progress:
            batches = track(
                batches,
                total=-(-total // batch_size),
                description='Inference')
        out = dict(predictions=[], visualization=[])
        try:
            for data, chunk in batches:
                preds = self.forward(data, **fwd_kw)
                vis = self.visualize(chunk, preds, **vis_kw)
                res = self.postprocess(preds, vis, inputs=chunk, **post_kw)
                out['predictions'].extend(res['predictions'])
                out['visualization'].extend(res['visualization'])
        finally:
            if self._video is not None and self._video.get('writer'):
                self._video['writer'].release()
                print_log(f'video written to {self._video["output_file"]}',
                          logger='current')
        if out_dir is not None and not post_kw.get('return_datasamples'):
            self.dump_predictions(out['predictions'],
                                  osp.join(out_dir, 'landmarks.json'))
        return out

    def dump_predictions(self, predictions: List[dict], path: str) -> None:
        """Write predictions in the ``mmuld.landmarks.v1`` JSON format.

        Args:
            predictions (list[dict]): Output of :meth:`postprocess`.
            path (str): Output ``.json`` file.
        """
        images = []
        for p in predictions:
            entry = dict(
                img_path=p['img_path'],
                img_id=None,
                uld_split=None,
                bbox=p['bbox'],
                keypoints=p['keypoints'],
                scores=p['keypoint_scores'],
                visible=p['keypoints_visible'],
                roi_source=p.get('roi_source'))
            if 'frame_index' in p:
                entry['frame_index'] = p['frame_index']
            images.append(entry)
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(
                dict(
                    format=LANDMARKS_FORMAT,
                    num_landmarks=self.num_landmarks,
                    images=images), f)
        print_log(f'{len(images)} predictions written to {path}',
                  logger='current')
