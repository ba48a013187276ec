# Copyright (c) mmuld contributors. All rights reserved.
"""A procedural face world with known landmarks (for learnability checks).

Faces are drawn in a canonical frame (face centre at the origin, half-width
1, y pointing down) as polygons: ears, head, hair, brows, eyes with iris and
pupil, nose and lips. Every polygon vertex goes through the same
projection (:class:`~mmuld.datasets.synthetic_common.Projector`): a
yaw-like rotation of the face surface (an ellipsoid, the nose tip sticking
out of it), then an in-plane similarity (rotation, scale, translation).
The five ground-truth points (left eye centre, right eye centre, nose tip,
left and right mouth corner, MAFL order; "left" is the image-left side of
an upright frontal face) go through the same projection, so they sit
exactly on the drawn parts. At a wide yaw the parts on the far side turn
behind the head: what faces away is not drawn, and a point whose part is
hidden is written with COCO visibility 1 (labelled, not visible).

Images are rendered at their final size with anti-aliased sub-pixel
polygons (OpenCV's ``shift``), pixel centres at integer coordinates (the
convention of mmuld and mmpose).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .synthetic_common import (PoseRanges, Projector, draw_background, ellipse,
                               fill, fill_facing, light_and_noise, polyline,
                               rand_color, write_world)

KEYPOINT_NAMES = ('left_eye', 'right_eye', 'nose', 'left_mouth',
                  'right_mouth')
_HALF_HEIGHT = 1.3  # head half-height in face units (half-width is 1)


@dataclass
class FaceWorldConfig(PoseRanges):
    """Ranges of the face world: :class:`PoseRanges` and its own fields.

    Args:
        face_size (float): Head half-width at scale 1, as a fraction of the
            image side.
        ears_prob (float): Probability that ears are drawn.
        hair_prob (float): Probability that hair is drawn.
    """
    face_size: float = 0.26
    ears_prob: float = 0.7
    hair_prob: float = 0.7

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first out-of-range value."""
        self.check_ranges('face', [
            ('face_size', 0 < self.face_size <= 0.5),
            ('ears_prob', 0 <= self.ears_prob <= 1),
            ('hair_prob', 0 <= self.hair_prob <= 1),
        ])


def render_face(rng: np.random.Generator,
                cfg: Optional[FaceWorldConfig] = None,
                return_masks: bool = False
                ) -> Tuple[np.ndarray, np.ndarray, Dict]:
    """Draw one face.

    Args:
        rng (np.random.Generator): Random generator (one per image).
        cfg (FaceWorldConfig, optional): Ranges; defaults if None.
        return_masks (bool): Also return binary masks of the parts
            (``'eyes'``, ``'nose'``, ``'mouth'``, ``'head'``), for tests.

    Returns:
        tuple: the BGR uint8 image ``(S, S, 3)``, the keypoints ``(5, 2)``
        (x, y) in pixels (MAFL order) and a dict with the sampled pose
        (``yaw``, ``rotation``, ``scale``), ``visible`` (5,) (False where
        the turn hides the part) and, if asked, ``masks``.
    """
    cfg = cfg or FaceWorldConfig()
    cfg.validate()
    size = cfg.image_size
    jit = cfg.shape_jitter

    def j(v: float) -> float:
        return v * (1.0 + rng.uniform(-jit, jit))

    # pose
    yaw = rng.uniform(-cfg.yaw, cfg.yaw)
    rot = rng.uniform(-cfg.rotation, cfg.rotation)
    scale = rng.uniform(*cfg.scale)
    center = size / 2.0 - 0.5 + rng.uniform(-cfg.translation,
                                            cfg.translation, 2) * size
    proj = Projector(yaw, rot, scale, center, cfg.face_size * size,
                     _HALF_HEIGHT)
    img = draw_background(rng, size, cfg.clutter)

    # facial proportions
    eye_dx, eye_y = j(0.4), j(-0.12)
    eye_ax, eye_ay = j(0.2), j(0.1)
    brow_y = eye_y - j(0.24)
    nose_tip_y, nose_w = j(0.32), j(0.16)
    mouth_y, mouth_dx = j(0.68), j(0.34)
    lip_h = j(0.09)
    face_ax = j(1.0)

    skin = np.array(rng.uniform([40, 70, 110], [180, 200, 255]))
    skin_col = tuple(float(v) for v in skin)
    dark_skin = tuple(float(v) for v in skin * 0.7)
    hair_col = rand_color(rng, 0, 120)
    iris_col = rand_color(rng, 20, 200)
    lip_col = tuple(float(v) for v in np.clip(
        skin * np.array([0.55, 0.5, 1.1]) + rng.uniform(-20, 20, 3), 0, 255))

    # ears stick out of the outline; the one turned towards the viewer is
    # drawn over the head
    ears = []
    if rng.uniform() < cfg.ears_prob:
        ears = [ellipse(sx * face_ax * 0.97, 0.0, 0.16, 0.3)
                for sx in (-1, 1)]
    front = [e for e in ears if proj.facing(e.mean(0, keepdims=True),
                                            -0.3)[0] > 0.1]
    for ear in ears:
        if not any(ear is e for e in front):
            fill(img, proj(ear, extra_depth=-0.3), dark_skin)
    head_px = proj.similarity(ellipse(0, 0, face_ax, _HALF_HEIGHT, 96))
    fill(img, head_px, skin_col)
    m_head = np.zeros((size, size), np.uint8)
    fill(m_head, head_px, 255)
    for ear in front:
        fill(img, proj(ear, extra_depth=-0.3), dark_skin)
    if rng.uniform() < cfg.hair_prob:
        t = np.linspace(np.pi, 2 * np.pi, 40)
        outer = np.stack([1.04 * face_ax * np.cos(t),
                          1.06 * _HALF_HEIGHT * np.sin(t)], 1)
        line = j(-0.72)
        inner = np.stack([np.linspace(face_ax * 0.95, -face_ax * 0.95, 20),
                          line + 0.08 * np.sin(np.linspace(0, np.pi, 20))], 1)
        # the back of the hair follows the outline, the hairline the face
        fill(img, np.concatenate([proj.similarity(outer), proj(inner)]),
             hair_col)
    # brows
    for sx in (-1, 1):
        t = np.linspace(0, 1, 12)
        top = np.stack([sx * (eye_dx - 0.2 + 0.4 * t),
                        brow_y - 0.06 * np.sin(np.pi * t)], 1)
        bot = top[::-1] + np.array([0, 0.07])
        fill_facing(img, proj, np.concatenate([top, bot]), hair_col)
    # eyes
    eye_pts = []
    m_eyes = np.zeros((size, size), np.uint8)
    for sx in (-1, 1):
        c = np.array([sx * eye_dx, eye_y])
        fill_facing(img, proj, ellipse(c[0], c[1], eye_ax, eye_ay),
                    (235, 235, 235), mask=m_eyes)
        fill_facing(img, proj, ellipse(c[0], c[1], eye_ay * 0.95,
                                       eye_ay * 0.95), iris_col)
        fill_facing(img, proj, ellipse(c[0], c[1], eye_ay * 0.45,
                                       eye_ay * 0.45), (15, 15, 15))
        eye_pts.append(c)
    # nose: bridge-to-tip wedge, then nostrils
    tip = np.array([0.0, nose_tip_y])
    wedge = np.array([[-0.05, eye_y + 0.05], [0.05, eye_y + 0.05],
                      [nose_w, nose_tip_y], [0, nose_tip_y + 0.06],
                      [-nose_w, nose_tip_y]])
    depth_nose = 0.25
    m_nose = np.zeros((size, size), np.uint8)
    fill_facing(img, proj, wedge, dark_skin, depth_nose, mask=m_nose)
    for sx in (-1, 1):
        fill_facing(img, proj, ellipse(sx * nose_w * 0.55, nose_tip_y + 0.02,
                                       0.05, 0.03), (25, 25, 40),
                    depth_nose * 0.6)
    # mouth: upper and lower lip curves between the corners
    t = np.linspace(-1, 1, 21)
    upper = np.stack([mouth_dx * t, mouth_y - lip_h * 0.8 *
                      (1 - t**2) * (0.6 + 0.4 * np.abs(t))], 1)
    smile = rng.uniform(-0.05, 0.08)
    lower = np.stack([mouth_dx * t[::-1], mouth_y + lip_h *
                      (1 - t[::-1]**2) - smile * t[::-1]**2 + smile], 1)
    m_mouth = np.zeros((size, size), np.uint8)
    fill_facing(img, proj, np.concatenate([upper, lower]), lip_col,
                mask=m_mouth)
    line = np.stack([mouth_dx * t, np.full_like(t, mouth_y)], 1)
    line = line[proj.facing(line) > 0]
    if len(line) > 1:
        polyline(img, proj(line), (30, 20, 60))
    corners = np.array([[-mouth_dx, mouth_y], [mouth_dx, mouth_y]])

    out = light_and_noise(img, rng, cfg.lighting, cfg.noise)
    canon = np.stack([eye_pts[0], eye_pts[1], corners[0], corners[1]])
    kpts = np.concatenate([proj(canon[:2]), proj(tip[None], depth_nose),
                           proj(canon[2:])]).astype(np.float64)
    visible = np.concatenate([proj.facing(canon[:2]) > 0,
                              proj.facing(tip[None], depth_nose) > 0,
                              proj.facing(canon[2:]) > 0])
    info = dict(yaw=float(yaw), rotation=float(rot), scale=float(scale),
                visible=visible)
    if return_masks:
        info['masks'] = dict(
            head=m_head, eyes=m_eyes, nose=m_nose, mouth=m_mouth)
    return out, kpts, info


def make_face_world(out_dir: str,
                    num_train: int = 400,
                    num_test: int = 150,
                    seed: int = 0,
                    cfg: Optional[FaceWorldConfig] = None) -> Dict[str, str]:
    """Write a face world: PNG images and 5-point COCO jsons.

    Layout and visibility as :func:`~mmuld.datasets.synthetic_common.
    write_world`; the ranges and seed go to ``out_dir/face_world.json``.

    Args:
        out_dir (str): Output folder (created).
        num_train (int): Number of training images.
        num_test (int): Number of test images.
        seed (int): Seed; train and test use disjoint streams of it.
        cfg (FaceWorldConfig, optional): Ranges.

    Returns:
        dict: paths of ``train`` and ``test`` annotation files.
    """
    cfg = cfg or FaceWorldConfig()
    cfg.validate()
    return write_world(
        out_dir, lambda rng: render_face(rng, cfg), KEYPOINT_NAMES, 'face',
        num_train, num_test, seed, cfg, meta_file='face_world.json')
