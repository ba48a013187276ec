# Copyright (c) mmuld contributors. All rights reserved.
"""A procedural face world with known landmarks (for learnability checks).

Faces are drawn in a canonical frame (face centre at the origin, half-width
1, y pointing down) as polygons: ears, head, hair, brows, eyes with iris and
pupil, nose and lips. Every polygon vertex goes through the same
projection: a yaw-like rotation of the face surface (an ellipsoid, the nose
tip sticking out of it), then an in-plane similarity (rotation, scale,
translation). The five ground-truth points (left eye centre, right eye
centre, nose tip, left and right mouth corner, MAFL order; "left" is the
image-left side of an upright frontal face) go through the same projection,
so they sit exactly on the drawn parts.

Images are rendered at their final size with anti-aliased sub-pixel
polygons (OpenCV's ``shift``), pixel centres at integer coordinates (the
convention of mmuld and mmpose).
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

KEYPOINT_NAMES = ('left_eye', 'right_eye', 'nose', 'left_mouth',
                  'right_mouth')
_SHIFT = 4  # sub-pixel bits for cv2.fillPoly
_HALF_HEIGHT = 1.3  # head half-height in face units (half-width is 1)


@dataclass
class FaceWorldConfig:
    """Ranges of the face world (each ``(low, high)`` is sampled uniformly).

    Args:
        image_size (int): Square image side in pixels.
        face_size (float): Head half-width at scale 1, as a fraction of the
            image side.
        rotation (float): Max in-plane rotation in degrees (+-).
        scale (tuple): Scale range of the head.
        translation (float): Max shift of the head centre, fraction of the
            image side (+-, each axis).
        yaw (float): Max yaw-like out-of-plane rotation in degrees (+-).
        shape_jitter (float): Relative jitter of the facial proportions
            (eye spacing, mouth width, nose length, ...).
        lighting (float): Max strength of a linear lighting gradient.
        noise (float): Max std of the Gaussian pixel noise (0-255 scale).
        clutter (tuple): Range of the number of background shapes.
        ears_prob (float): Probability that ears are drawn.
        hair_prob (float): Probability that hair is drawn.
    """
    image_size: int = 128
    face_size: float = 0.26
    rotation: float = 20.0
    scale: Tuple[float, float] = (0.85, 1.1)
    translation: float = 0.05
    yaw: float = 30.0
    shape_jitter: float = 0.1
    lighting: float = 0.35
    noise: float = 6.0
    clutter: Tuple[int, int] = (3, 10)
    ears_prob: float = 0.7
    hair_prob: float = 0.7

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first out-of-range value."""
        checks = [
            ('image_size', self.image_size >= 16),
            ('face_size', 0 < self.face_size <= 0.5),
            ('rotation', 0 <= self.rotation <= 180),
            ('scale', 0 < self.scale[0] <= self.scale[1]),
            ('translation', 0 <= self.translation < 0.5),
            ('yaw', 0 <= self.yaw < 90),
            ('shape_jitter', 0 <= self.shape_jitter < 0.5),
            ('lighting', 0 <= self.lighting < 1),
            ('noise', self.noise >= 0),
            ('clutter', 0 <= self.clutter[0] <= self.clutter[1]),
            ('ears_prob', 0 <= self.ears_prob <= 1),
            ('hair_prob', 0 <= self.hair_prob <= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(
                    f'face world: invalid {name}={getattr(self, name)!r}')


def _ellipse(cx: float, cy: float, ax: float, ay: float,
             n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1)


def _rand_color(rng: np.random.Generator, lo: int = 0,
                hi: int = 256) -> Tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


class _Projector:
    """Canonical face points -> image pixels (yaw, then similarity)."""

    def __init__(self, yaw_deg: float, rot_deg: float, scale: float,
                 center: np.ndarray, face_px: float):
        self.yaw = np.deg2rad(yaw_deg)
        rot = np.deg2rad(rot_deg)
        self.R = np.array([[np.cos(rot), -np.sin(rot)],
                           [np.sin(rot), np.cos(rot)]])
        self.s = scale * face_px
        self.c = center

    def depth(self, pts: np.ndarray) -> np.ndarray:
        """Depth of points on the head ellipsoid (max 1 at the centre)."""
        r2 = pts[:, 0]**2 + (pts[:, 1] / _HALF_HEIGHT)**2
        return np.sqrt(np.clip(1.0 - r2, 0.0, None))

    def __call__(self, pts: np.ndarray,
                 extra_depth: float = 0.0) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        z = self.depth(pts) + extra_depth
        x = pts[:, 0] * np.cos(self.yaw) + z * np.sin(self.yaw)
        local = np.stack([x, pts[:, 1]], 1) * self.s
        return local @ self.R.T + self.c


def _fill(img: np.ndarray, pts: np.ndarray, color) -> None:
    poly = np.round(pts * (1 << _SHIFT)).astype(np.int32)[None]
    cv2.fillPoly(img, poly, color, lineType=cv2.LINE_AA, shift=_SHIFT)


def _draw_clutter(img: np.ndarray, rng: np.random.Generator,
                  count: int) -> None:
    size = img.shape[0]
    for _ in range(count):
        color = _rand_color(rng)
        kind = rng.integers(0, 4)
        c = rng.uniform(0, size, 2)
        r = rng.uniform(0.04, 0.2) * size
        if kind == 0:
            _fill(img, _ellipse(c[0], c[1], r, r * rng.uniform(0.4, 1.0)),
                  color)
        elif kind == 1:
            ang = rng.uniform(0, np.pi)
            d = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
            d[:, 1] *= rng.uniform(0.3, 1.0)
            rot = np.array([[np.cos(ang), -np.sin(ang)],
                            [np.sin(ang), np.cos(ang)]])
            _fill(img, c + (d * r) @ rot.T, color)
        elif kind == 2:
            p = (c + rng.uniform(-1, 1, (3, 2)) * r)
            _fill(img, p, color)
        else:
            p0 = tuple(int(v) for v in c)
            p1 = tuple(int(v) for v in c + rng.uniform(-2, 2, 2) * r)
            cv2.line(img, p0, p1, color, int(rng.integers(1, 4)),
                     cv2.LINE_AA)


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
        (``yaw``, ``rotation``, ``scale``) and, if asked, ``masks``.
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
    proj = _Projector(yaw, rot, scale, center, cfg.face_size * size)

    # background: colour, gradient, clutter
    bg = np.array(_rand_color(rng), np.float32)
    img = np.empty((size, size, 3), np.float32)
    img[:] = bg
    gy, gx = np.mgrid[0:size, 0:size] / float(size)
    gdir = rng.normal(size=2)
    img *= (1.0 + 0.3 * ((gx - 0.5) * gdir[0] + (gy - 0.5) * gdir[1]))[
        ..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    _draw_clutter(img, rng, int(rng.integers(cfg.clutter[0],
                                             cfg.clutter[1] + 1)))

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
    hair_col = _rand_color(rng, 0, 120)
    iris_col = _rand_color(rng, 20, 200)
    lip_col = tuple(float(v) for v in np.clip(
        skin * np.array([0.55, 0.5, 1.1]) + rng.uniform(-20, 20, 3), 0, 255))

    if rng.uniform() < cfg.ears_prob:
        for sx in (-1, 1):
            ear = _ellipse(sx * face_ax * 0.97, 0.0, 0.16, 0.3)
            _fill(img, proj(ear, extra_depth=-0.3), dark_skin)
    head = _ellipse(0, 0, face_ax, _HALF_HEIGHT, 96)
    head_px = proj(head)
    _fill(img, head_px, skin_col)
    m_head = np.zeros((size, size), np.uint8)
    _fill(m_head, head_px, 255)
    if rng.uniform() < cfg.hair_prob:
        t = np.linspace(np.pi, 2 * np.pi, 40)
        outer = np.stack([1.04 * face_ax * np.cos(t),
                          1.06 * _HALF_HEIGHT * np.sin(t)], 1)
        line = j(-0.72)
        inner = np.stack([np.linspace(face_ax * 0.95, -face_ax * 0.95, 20),
                          line + 0.08 * np.sin(np.linspace(0, np.pi, 20))], 1)
        _fill(img, proj(np.concatenate([outer, inner])), hair_col)
    # brows
    for sx in (-1, 1):
        t = np.linspace(0, 1, 12)
        top = np.stack([sx * (eye_dx - 0.2 + 0.4 * t),
                        brow_y - 0.06 * np.sin(np.pi * t)], 1)
        bot = top[::-1] + np.array([0, 0.07])
        _fill(img, proj(np.concatenate([top, bot])), hair_col)
    # eyes
    eye_pts = []
    m_eyes = np.zeros((size, size), np.uint8)
    for sx in (-1, 1):
        c = np.array([sx * eye_dx, eye_y])
        white = proj(_ellipse(c[0], c[1], eye_ax, eye_ay))
        _fill(img, white, (235, 235, 235))
        _fill(m_eyes, white, 255)
        _fill(img, proj(_ellipse(c[0], c[1], eye_ay * 0.95,
                                 eye_ay * 0.95)), iris_col)
        _fill(img, proj(_ellipse(c[0], c[1], eye_ay * 0.45,
                                 eye_ay * 0.45)), (15, 15, 15))
        eye_pts.append(proj(c[None])[0])
    # nose: bridge-to-tip wedge, then nostrils
    tip = np.array([0.0, nose_tip_y])
    wedge = np.array([[-0.05, eye_y + 0.05], [0.05, eye_y + 0.05],
                      [nose_w, nose_tip_y], [0, nose_tip_y + 0.06],
                      [-nose_w, nose_tip_y]])
    depth_nose = 0.25
    _fill(img, proj(wedge, extra_depth=depth_nose), dark_skin)
    m_nose = np.zeros((size, size), np.uint8)
    _fill(m_nose, proj(wedge, extra_depth=depth_nose), 255)
    for sx in (-1, 1):
        _fill(img, proj(_ellipse(sx * nose_w * 0.55, nose_tip_y + 0.02,
                                 0.05, 0.03), extra_depth=depth_nose * 0.6),
              (25, 25, 40))
    nose_pt = proj(tip[None], extra_depth=depth_nose)[0]
    # mouth: upper and lower lip curves between the corners
    t = np.linspace(-1, 1, 21)
    upper = np.stack([mouth_dx * t, mouth_y - lip_h * 0.8 *
                      (1 - t**2) * (0.6 + 0.4 * np.abs(t))], 1)
    smile = rng.uniform(-0.05, 0.08)
    lower = np.stack([mouth_dx * t[::-1], mouth_y + lip_h *
                      (1 - t[::-1]**2) - smile * t[::-1]**2 + smile], 1)
    mouth = proj(np.concatenate([upper, lower]))
    _fill(img, mouth, lip_col)
    m_mouth = np.zeros((size, size), np.uint8)
    _fill(m_mouth, mouth, 255)
    line = proj(np.stack([mouth_dx * t, np.full_like(t, mouth_y)], 1))
    cv2.polylines(img, [np.round(line * (1 << _SHIFT)).astype(np.int32)],
                  False, (30, 20, 60), 1, cv2.LINE_AA, _SHIFT)
    corners = proj(np.array([[-mouth_dx, mouth_y], [mouth_dx, mouth_y]]))

    # lighting gradient and noise over everything
    out = img.astype(np.float32)
    light = rng.uniform(0, cfg.lighting)
    ldir = rng.normal(size=2)
    ldir /= np.linalg.norm(ldir) + 1e-8
    out *= (1.0 + light * ((gx - 0.5) * ldir[0] +
                           (gy - 0.5) * ldir[1]) * 2)[..., None]
    out += rng.normal(0, rng.uniform(0, cfg.noise), out.shape)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)

    kpts = np.stack([eye_pts[0], eye_pts[1], nose_pt, corners[0],
                     corners[1]]).astype(np.float64)
    info = dict(yaw=float(yaw), rotation=float(rot), scale=float(scale))
    if return_masks:
        info['masks'] = dict(
            head=m_head, eyes=m_eyes, nose=m_nose, mouth=m_mouth)
    return out, kpts, info


def _split_rng(seed: int, split: str, index: int) -> np.random.Generator:
    # train and test draw from disjoint streams of the same seed
    return np.random.default_rng([int(seed), ('train', 'test').index(split),
                                  int(index)])


def make_face_world(out_dir: str,
                    num_train: int = 400,
                    num_test: int = 150,
                    seed: int = 0,
                    cfg: Optional[FaceWorldConfig] = None) -> Dict[str, str]:
    """Write a face world: PNG images and 5-point COCO jsons.

    Layout: ``out_dir/images/{train,test}_NNNNN.png``,
    ``out_dir/annotations/{train,test}.json`` (whole-image boxes, so no
    ground truth leaks into the crop; each annotation also carries the
    sampled ``yaw`` in degrees) and ``out_dir/face_world.json`` (the
    ranges and seed).

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
    if num_train < 1 or num_test < 1:
        raise ValueError(f'face world: need at least one train and one test '
                         f'image, got {num_train} and {num_test}')
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    size = cfg.image_size
    paths = {}
    for split, num in (('train', num_train), ('test', num_test)):
        images: List[dict] = []
        anns: List[dict] = []
        for i in range(num):
            img, kpts, info = render_face(_split_rng(seed, split, i), cfg)
            name = f'images/{split}_{i:05d}.png'
            if not cv2.imwrite(osp.join(out_dir, name), img):
                raise OSError(f'could not write {osp.join(out_dir, name)}')
            inside = ((kpts >= 0) & (kpts <= size - 1)).all(1)
            kp = np.concatenate(
                [kpts, np.where(inside, 2.0, 0.0)[:, None]], 1)
            images.append(dict(id=i + 1, file_name=name, width=size,
                               height=size))
            anns.append(dict(
                id=i + 1, image_id=i + 1, category_id=1, iscrowd=0,
                bbox=[0.0, 0.0, float(size), float(size)],
                area=float(size * size), num_keypoints=int(inside.sum()),
                keypoints=[round(float(v), 3) for v in kp.reshape(-1)],
                uld_split=split, yaw=round(info['yaw'], 2)))
        data = dict(
            images=images,
            annotations=anns,
            categories=[dict(id=1, name='face', supercategory='face',
                             keypoints=list(KEYPOINT_NAMES), skeleton=[])])
        path = osp.join(out_dir, 'annotations', f'{split}.json')
        with open(path, 'w') as f:
            json.dump(data, f)
        paths[split] = path
    with open(osp.join(out_dir, 'face_world.json'), 'w') as f:
        json.dump(dict(seed=seed, num_train=num_train, num_test=num_test,
                       **asdict(cfg)), f, indent=1)
    return paths
