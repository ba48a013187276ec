# Copyright (c) mmuld contributors. All rights reserved.
"""A procedural world of cat heads with known landmarks.

A second category for learnability checks, drawn like the face world
(:mod:`mmuld.datasets.synthetic_faces`): polygons in a canonical frame
(head centre at the origin, half-width 1, y down), projected by the same
yaw-then-similarity :class:`~mmuld.datasets.synthetic_common.Projector`,
over a cluttered background. A head has two pointed ears with an inner
ear, fur of one or two colours with optional tabby stripes, almond eyes
with a slit pupil, a muzzle, a triangular nose, a mouth and whiskers.

Five ground-truth points, in the order of the CatHeads benchmark's
subset used by mmuld: left eye centre, right eye centre, nose, left ear
tip, right ear tip ("left" is the image-left side of an upright frontal
head). The eyes come first, so the inter-ocular normaliser is points 0
and 1, as for faces.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .synthetic_common import (PoseRanges, Projector, draw_background, ellipse,
                               fill, fill_facing, light_and_noise, polyline,
                               write_world)

KEYPOINT_NAMES = ('left_eye', 'right_eye', 'nose', 'left_ear_tip',
                  'right_ear_tip')
_HALF_HEIGHT = 0.85  # head half-height (half-width 1): a cat head is wide

# fur colours (BGR): ginger, grey, black, cream, brown, white
_FUR = np.array([[40, 110, 210], [130, 130, 130], [35, 35, 40],
                 [170, 215, 235], [40, 70, 110], [225, 225, 225]], float)


@dataclass
class CatWorldConfig(PoseRanges):
    """Ranges of the cat world: :class:`PoseRanges` and its own fields.

    Args:
        head_size (float): Head half-width at scale 1, as a fraction of
            the image side.
        stripes_prob (float): Probability of tabby stripes.
    """
    head_size: float = 0.27
    stripes_prob: float = 0.5

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first out-of-range value."""
        self.check_ranges('cat', [
            ('head_size', 0 < self.head_size <= 0.5),
            ('stripes_prob', 0 <= self.stripes_prob <= 1),
        ])


def _tone(rng: np.random.Generator, base: np.ndarray,
          spread: float = 25.0) -> np.ndarray:
    return np.clip(base + rng.uniform(-spread, spread, 3), 0, 255)


def render_cat(rng: np.random.Generator,
               cfg: Optional[CatWorldConfig] = None,
               return_masks: bool = False
               ) -> Tuple[np.ndarray, np.ndarray, Dict]:
    """Draw one cat head.

    Args:
        rng (np.random.Generator): Random generator (one per image).
        cfg (CatWorldConfig, optional): Ranges; defaults if None.
        return_masks (bool): Also return binary masks of the parts
            (``'eyes'``, ``'nose'``, ``'ears'``, ``'head'``), for tests.

    Returns:
        tuple: the BGR uint8 image ``(S, S, 3)``, the keypoints ``(5, 2)``
        (x, y) in pixels and a dict with the sampled pose (``yaw``,
        ``rotation``, ``scale``), ``visible`` (5,) and, if asked,
        ``masks``.
    """
    cfg = cfg or CatWorldConfig()
    cfg.validate()
    size = cfg.image_size
    jit = cfg.shape_jitter

    def j(v: float) -> float:
        return v * (1.0 + rng.uniform(-jit, jit))

    yaw = rng.uniform(-cfg.yaw, cfg.yaw)
    rot = rng.uniform(-cfg.rotation, cfg.rotation)
    scale = rng.uniform(*cfg.scale)
    center = size / 2.0 - 0.5 + rng.uniform(-cfg.translation,
                                            cfg.translation, 2) * size
    proj = Projector(yaw, rot, scale, center, cfg.head_size * size,
                     _HALF_HEIGHT)
    img = draw_background(rng, size, cfg.clutter)

    # proportions
    head_ax = j(1.0)
    eye_dx, eye_y = j(0.4), j(-0.08)
    eye_ax, eye_ay = j(0.2), j(0.13)
    slit = rng.uniform(0.02, 0.09)  # pupil half-width: a slit to a round
    nose_y, nose_w, nose_h = j(0.3), j(0.12), j(0.09)
    ear_base_in, ear_base_out = j(0.22), j(0.95)
    ear_tip_x, ear_tip_y = j(0.72), -_HALF_HEIGHT - j(0.55)

    fur = _tone(rng, _FUR[rng.integers(len(_FUR))])
    fur_col = tuple(float(v) for v in fur)
    dark = tuple(float(v) for v in fur * rng.uniform(0.35, 0.7))
    light = tuple(float(v) for v in np.clip(fur * 0.5 + 120, 0, 255))
    inner_ear = tuple(float(v) for v in _tone(rng, np.array([150, 140,
                                                             225])))
    nose_col = tuple(float(v) for v in _tone(rng, np.array([120, 110,
                                                            200]), 40))
    iris = tuple(float(v) for v in _tone(
        rng, np.array([[40, 190, 190], [60, 200, 120], [200, 150, 60],
                       [30, 150, 220]])[rng.integers(4)], 30))

    # ears: triangles rising from the top of the head, drawn before it;
    # the tips stay clear of the head
    ears, ear_tips = [], []
    for sx in (-1, 1):
        base_y_in = -np.sqrt(1 - (ear_base_in / head_ax)**2) * _HALF_HEIGHT
        base_y_out = -np.sqrt(max(0.0, 1 - (ear_base_out / head_ax)**2)) \
            * _HALF_HEIGHT
        tip = np.array([sx * ear_tip_x, ear_tip_y])
        tri = np.array([[sx * ear_base_in, base_y_in + 0.1], tip,
                        [sx * ear_base_out, base_y_out + 0.1]])
        ears.append(tri)
        ear_tips.append(tip)
    m_ears = np.zeros((size, size), np.uint8)
    for tri in ears:
        px = proj.similarity(tri)
        fill(img, px, fur_col)
        fill(m_ears, px, 255)
        inner = tri.mean(0) + 0.6 * (tri - tri.mean(0))
        inner[1] = inner[1] + 0.35 * (tri[1] - inner[1])
        fill(img, proj.similarity(inner), inner_ear)
    head_px = proj.similarity(ellipse(0, 0, head_ax, _HALF_HEIGHT, 96))
    fill(img, head_px, fur_col)
    m_head = np.zeros((size, size), np.uint8)
    fill(m_head, head_px, 255)
    # tabby stripes on the forehead and cheeks
    if rng.uniform() < cfg.stripes_prob:
        for k in range(int(rng.integers(3, 6))):
            x = (k - 2) * 0.13 + rng.uniform(-0.03, 0.03)
            stripe = np.array([[x - 0.03, -0.8], [x + 0.03, -0.8],
                               [x * 0.6 + 0.015, -0.3],
                               [x * 0.6 - 0.015, -0.3]])
            fill_facing(img, proj, stripe, dark)
        for sx in (-1, 1):
            for k in range(2):
                y = 0.15 + 0.14 * k
                stripe = np.array([[sx * 0.98, y - 0.03],
                                   [sx * 0.98, y + 0.03],
                                   [sx * 0.62, y + 0.01], [sx * 0.62, y]])
                fill_facing(img, proj, stripe, dark)
    # muzzle
    for sx in (-1, 1):
        fill_facing(img, proj, ellipse(sx * 0.13, nose_y + 0.14, 0.17, 0.13),
                    light, 0.12)
    # eyes: almond, iris, slit pupil
    m_eyes = np.zeros((size, size), np.uint8)
    eye_pts = []
    for sx in (-1, 1):
        c = np.array([sx * eye_dx, eye_y])
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        almond = np.stack([c[0] + eye_ax * np.cos(t), c[1] + eye_ay *
                           np.sin(t) * (1 - 0.3 * np.cos(t) * sx)], 1)
        fill_facing(img, proj, almond, (25, 25, 25), mask=m_eyes)
        fill_facing(img, proj, ellipse(c[0], c[1], eye_ax * 0.85,
                                       eye_ay * 0.85), iris)
        fill_facing(img, proj, ellipse(c[0], c[1], slit, eye_ay * 0.8),
                    (10, 10, 10))
        eye_pts.append(c)
    # nose: a rounded inverted triangle, the point is its centre
    nose_c = np.array([0.0, nose_y])
    nose = np.array([[-nose_w, nose_y - nose_h * 0.6],
                     [nose_w, nose_y - nose_h * 0.6],
                     [0.0, nose_y + nose_h * 0.9]])
    m_nose = np.zeros((size, size), np.uint8)
    nose_depth = 0.15
    fill_facing(img, proj, nose, nose_col, nose_depth, mask=m_nose)
    # mouth and whiskers
    mouth = [np.array([[0.0, nose_y + nose_h * 0.9], [0.0, nose_y + 0.2]])]
    for sx in (-1, 1):
        t = np.linspace(0, 1, 8)
        mouth.append(np.stack([sx * 0.16 * t, nose_y + 0.2 + 0.05 *
                               np.sin(np.pi * t)], 1))
    for line in mouth:
        line = line[proj.facing(line, 0.1) > 0]
        if len(line) > 1:
            polyline(img, proj(line, 0.1), (30, 30, 40))
    whisker_col = (230, 230, 230) if fur.mean() < 140 else (40, 40, 40)
    for sx in (-1, 1):
        for k in range(3):
            a = np.array([sx * 0.22, nose_y + 0.12 + 0.05 * k])
            tip_x = sx * (1.25 + rng.uniform(-0.1, 0.1))
            tip_y = nose_y - 0.08 + 0.14 * k + rng.uniform(-0.05, 0.05)
            b = np.array([tip_x, tip_y])
            pts = a + np.linspace(0, 1, 6)[:, None] * (b - a)
            near = pts[:, 0] ** 2 <= 0.9
            polyline(img, np.concatenate([proj(pts[near], 0.1),
                                          proj.similarity(pts[~near])]),
                     whisker_col)

    out = light_and_noise(img, rng, cfg.lighting, cfg.noise)
    kpts = np.concatenate([proj(np.stack(eye_pts)),
                           proj(nose_c[None], nose_depth),
                           proj.similarity(np.stack(ear_tips))])
    visible = np.concatenate([proj.facing(np.stack(eye_pts)) > 0,
                              proj.facing(nose_c[None], nose_depth) > 0,
                              np.ones(2, bool)])
    info = dict(yaw=float(yaw), rotation=float(rot), scale=float(scale),
                visible=visible)
    if return_masks:
        info['masks'] = dict(head=m_head, eyes=m_eyes, nose=m_nose,
                             ears=m_ears)
    return out, kpts.astype(np.float64), info


def make_cat_world(out_dir: str,
                   num_train: int = 400,
                   num_test: int = 150,
                   seed: int = 0,
                   cfg: Optional[CatWorldConfig] = None) -> Dict[str, str]:
    """Write a cat world: PNG images and 5-point COCO jsons.

    Layout and visibility as :func:`~mmuld.datasets.synthetic_common.
    write_world`; the ranges and seed go to ``out_dir/cat_world.json``.

    Args:
        out_dir (str): Output folder (created).
        num_train (int): Number of training images.
        num_test (int): Number of test images.
        seed (int): Seed; train and test use disjoint streams of it.
        cfg (CatWorldConfig, optional): Ranges.

    Returns:
        dict: paths of ``train`` and ``test`` annotation files.
    """
    cfg = cfg or CatWorldConfig()
    cfg.validate()
    return write_world(
        out_dir, lambda rng: render_cat(rng, cfg), KEYPOINT_NAMES, 'cat',
        num_train, num_test, seed, cfg, meta_file='cat_world.json')
