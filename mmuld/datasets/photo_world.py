# Copyright (c) mmuld contributors. All rights reserved.
"""A learnability world from a few labelled photographs.

Discovery needs hundreds of training images, and real photographs with
landmark labels are few on an offline machine (``data/face_samples``
holds 12). This draws a world from them: each output image is one source
photograph, cropped around its object box and turned by a random
rotation, scale and shift (the landmarks with it), so the world has the
photographs' appearance and the pose variation of the drawn worlds.
Train and test images come from disjoint source photographs, so the test
objects are ones the method never saw.
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np


@dataclass
class PhotoWorldConfig:
    """Ranges of a photo world (each ``(low, high)`` sampled uniformly).

    Args:
        image_size (int): Side of the square output images.
        context (float): The crop side is ``context`` times the larger
            side of the object box (before the random scale).
        rotation (float): Max rotation in degrees (+-).
        scale (tuple): Scale range of the object.
        translation (float): Max shift, fraction of the crop side (+-).
        test_share (float): Share of the source photographs that only
            test images come from.
    """
    image_size: int = 128
    context: float = 1.6
    rotation: float = 30.0
    scale: Tuple[float, float] = (0.8, 1.2)
    translation: float = 0.08
    test_share: float = 0.34

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first out-of-range value."""
        checks = [
            ('image_size', self.image_size >= 16),
            ('context', self.context >= 1),
            ('rotation', 0 <= self.rotation <= 180),
            ('scale', 0 < self.scale[0] <= self.scale[1]),
            ('translation', 0 <= self.translation < 0.5),
            ('test_share', 0 < self.test_share < 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(
                    f'photo world: invalid {name}={getattr(self, name)!r}')


def load_sources(ann_files: Sequence[str], img_roots: Sequence[str]
                 ) -> Tuple[List[dict], List[str]]:
    """The labelled objects of COCO keypoint files.

    Args:
        ann_files (Sequence[str]): COCO keypoint jsons (same points each).
        img_roots (Sequence[str]): Image folder of each file.

    Returns:
        tuple: one dict per object (``path``, ``bbox`` x, y, w, h,
        ``keypoints`` (G, 3)) and the point names.

    Raises:
        ValueError: The files disagree on the points, or hold none.
    """
    sources, names = [], None
    for ann_file, root in zip(ann_files, img_roots):
        with open(ann_file) as f:
            data = json.load(f)
        cat = (data.get('categories') or [{}])[0]
        files = {im['id']: im['file_name'] for im in data['images']}
        for ann in data['annotations']:
            kp = np.asarray(ann['keypoints'], np.float64).reshape(-1, 3)
            these = list(cat.get('keypoints') or
                         [f'point_{i}' for i in range(len(kp))])
            if names is None:
                names = these
            elif len(these) != len(names):
                raise ValueError(f'{ann_file} has {len(these)} points, the '
                                 f'other files {len(names)}')
            if ann.get('iscrowd') or (kp[:, 2] <= 0).any():
                continue  # every point must be labelled
            sources.append(dict(
                path=osp.join(root, files[ann['image_id']]),
                bbox=np.asarray(ann['bbox'], np.float64), keypoints=kp))
    if not sources:
        raise ValueError('no fully labelled object in ' + ', '.join(
            ann_files))
    return sources, names


def _render(src: dict, image: np.ndarray, rng: np.random.Generator,
            cfg: PhotoWorldConfig) -> Tuple[np.ndarray, np.ndarray]:
    x, y, w, h = src['bbox']
    centre = np.array([x + w / 2, y + h / 2])
    side = cfg.context * max(w, h) / rng.uniform(*cfg.scale)
    angle = rng.uniform(-cfg.rotation, cfg.rotation)
    shift = rng.uniform(-cfg.translation, cfg.translation, 2) * side
    size = cfg.image_size
    m = cv2.getRotationMatrix2D(tuple(centre + shift), angle, size / side)
    m[:, 2] += size / 2 - (centre + shift)
    out = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA,
                         borderMode=cv2.BORDER_REFLECT101)
    pts = src['keypoints'][:, :2] @ m[:, :2].T + m[:, 2]
    return out, pts


def make_photo_world(out_dir: str,
                     ann_files: Sequence[str],
                     img_roots: Sequence[str],
                     num_train: int = 400,
                     num_test: int = 150,
                     seed: int = 0,
                     cfg: PhotoWorldConfig = None) -> Dict[str, str]:
    """Write a photo world (layout of :func:`~mmuld.datasets.
    synthetic_common.write_world`, meta file ``photo_world.json``).

    Returns:
        dict: paths of the ``train`` and ``test`` annotation files.
    """
    cfg = cfg or PhotoWorldConfig()
    cfg.validate()
    sources, names = load_sources(ann_files, img_roots)
    if len(sources) < 2:
        raise ValueError('a photo world needs at least two labelled '
                         'objects (one for training, one for testing)')
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sources))
    n_test = min(len(sources) - 1, max(1, round(cfg.test_share *
                                                len(sources))))
    split_sources = dict(test=[sources[i] for i in order[:n_test]],
                         train=[sources[i] for i in order[n_test:]])
    images = {}
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    paths = {}
    for split, num in (('train', num_train), ('test', num_test)):
        recs, anns = [], []
        pool = split_sources[split]
        for i in range(num):
            src = pool[i % len(pool)]
            if src['path'] not in images:
                img = cv2.imread(src['path'], cv2.IMREAD_COLOR)
                if img is None:
                    raise ValueError(f'cannot read image {src["path"]}')
                images[src['path']] = img
            img, pts = _render(src, images[src['path']],
                               np.random.default_rng(
                                   [seed, ('train', 'test').index(split), i]),
                               cfg)
            size = cfg.image_size
            name = f'images/{split}_{i:05d}.png'
            if not cv2.imwrite(osp.join(out_dir, name), img):
                raise OSError(f'could not write {osp.join(out_dir, name)}')
            inside = ((pts >= 0) & (pts <= size - 1)).all(1)
            kp = np.concatenate([pts, np.where(inside, 2.0, 0.0)[:, None]],
                                1)
            recs.append(dict(id=i + 1, file_name=name, width=size,
                             height=size))
            anns.append(dict(
                id=i + 1, image_id=i + 1, category_id=1, iscrowd=0,
                bbox=[0.0, 0.0, float(size), float(size)],
                area=float(size * size), num_keypoints=int(inside.sum()),
                keypoints=[round(float(v), 3) for v in kp.reshape(-1)],
                uld_split=split, source=src['path']))
        path = osp.join(out_dir, 'annotations', f'{split}.json')
        with open(path, 'w') as f:
            json.dump(dict(images=recs, annotations=anns, categories=[dict(
                id=1, name='object', supercategory='object',
                keypoints=list(names), skeleton=[])]), f)
        paths[split] = path
    with open(osp.join(out_dir, 'photo_world.json'), 'w') as f:
        json.dump(dict(seed=seed, sources=list(ann_files),
                       train_sources=len(split_sources['train']),
                       test_sources=len(split_sources['test']),
                       **asdict(cfg)), f, indent=1)
    return paths
