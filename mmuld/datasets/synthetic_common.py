# Copyright (c) mmuld contributors. All rights reserved.
"""Drawing and writing shared by the procedural worlds with known landmarks.

Each world (:mod:`mmuld.datasets.synthetic_faces`,
:mod:`mmuld.datasets.synthetic_cats`) draws one object per image in a
canonical frame (object centre at the origin, half-width 1, y pointing
down) and projects every polygon vertex and every ground-truth point with
the same :class:`Projector`: a yaw-like rotation of the object's surface
(an ellipsoid), then an in-plane similarity. :func:`write_world` writes the
images and COCO keypoint jsons of any such renderer.
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass, fields
from typing import Callable, Dict, List, Sequence, Tuple

import cv2
import numpy as np


@dataclass
class PoseRanges:
    """Ranges shared by the drawn worlds (each ``(low, high)`` is sampled
    uniformly); a world's config adds its object's own fields.

    Args:
        image_size (int): Square image side in pixels.
        rotation (float): Max in-plane rotation in degrees (+-).
        scale (tuple): Scale range of the object.
        translation (float): Max shift of the object centre, fraction of
            the image side (+-, each axis).
        yaw (float): Max yaw-like out-of-plane rotation in degrees (+-).
        shape_jitter (float): Relative jitter of the object's proportions.
        lighting (float): Max strength of a linear lighting gradient.
        noise (float): Max std of the Gaussian pixel noise (0-255 scale).
        clutter (tuple): Range of the number of background shapes.
    """
    image_size: int = 128
    rotation: float = 20.0
    scale: Tuple[float, float] = (0.85, 1.1)
    translation: float = 0.05
    yaw: float = 30.0
    shape_jitter: float = 0.1
    lighting: float = 0.35
    noise: float = 6.0
    clutter: Tuple[int, int] = (3, 10)

    def check_ranges(self, world: str, own: Sequence[Tuple[str, bool]]
                     ) -> None:
        """Raise ``ValueError`` naming the first out-of-range value of the
        shared ranges, then of ``own`` (``(field, ok)`` pairs)."""
        checks = [
            ('image_size', self.image_size >= 16),
            ('rotation', 0 <= self.rotation <= 180),
            ('scale', 0 < self.scale[0] <= self.scale[1]),
            ('translation', 0 <= self.translation < 0.5),
            ('yaw', 0 <= self.yaw < 90),
            ('shape_jitter', 0 <= self.shape_jitter < 0.5),
            ('lighting', 0 <= self.lighting < 1),
            ('noise', self.noise >= 0),
            ('clutter', 0 <= self.clutter[0] <= self.clutter[1]),
        ] + list(own)
        for name, ok in checks:
            if not ok:
                raise ValueError(
                    f'{world} world: invalid {name}={getattr(self, name)!r}')


SHIFT = 4  # sub-pixel bits for cv2.fillPoly

#: ``render(rng) -> (image, keypoints (G, 2), info)``; ``info`` may hold
#: ``visible`` (G,) bool (False: the point is hidden by the object itself)
#: and pose values (``yaw``, ``rotation``, ``scale``)
Renderer = Callable[[np.random.Generator], Tuple[np.ndarray, np.ndarray,
                                                 Dict]]


def ellipse(cx: float, cy: float, ax: float, ay: float,
            n: int = 48) -> np.ndarray:
    """(n, 2) vertices of an axis-aligned ellipse."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1)


def rand_color(rng: np.random.Generator, lo: int = 0,
               hi: int = 256) -> Tuple[int, int, int]:
    """A random BGR colour with channels in ``[lo, hi)``."""
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


class Projector:
    """Canonical object points -> image pixels (yaw, then similarity).

    The object's surface is the ellipsoid ``x^2 + (y / half_height)^2 +
    z^2 = 1`` (z towards the viewer at yaw 0); a point may stick out of it
    by ``extra_depth``. Yaw turns the surface about the vertical axis.

    Args:
        yaw_deg (float): Yaw in degrees.
        rot_deg (float): In-plane rotation in degrees.
        scale (float): Scale of the object.
        center (np.ndarray): (2,) image position of the object centre.
        unit_px (float): Pixels per canonical unit at scale 1.
        half_height (float): Half-height of the surface ellipsoid.
    """

    def __init__(self, yaw_deg: float, rot_deg: float, scale: float,
                 center: np.ndarray, unit_px: float,
                 half_height: float = 1.0):
        self.yaw = np.deg2rad(yaw_deg)
        rot = np.deg2rad(rot_deg)
        self.R = np.array([[np.cos(rot), -np.sin(rot)],
                           [np.sin(rot), np.cos(rot)]])
        self.s = scale * unit_px
        self.c = center
        self.half_height = half_height

    def depth(self, pts: np.ndarray) -> np.ndarray:
        """Depth of points on the surface ellipsoid (1 at the centre)."""
        r2 = pts[:, 0]**2 + (pts[:, 1] / self.half_height)**2
        return np.sqrt(np.clip(1.0 - r2, 0.0, None))

    def facing(self, pts: np.ndarray, extra_depth: float = 0.0) -> np.ndarray:
        """Depth towards the viewer after the yaw: > 0 where the point faces
        the viewer, <= 0 where the turn hides it behind the object."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        z = self.depth(pts) + extra_depth
        return z * np.cos(self.yaw) - pts[:, 0] * np.sin(self.yaw)

    def __call__(self, pts: np.ndarray,
                 extra_depth: float = 0.0) -> np.ndarray:
        """Image pixels of points on (or ``extra_depth`` above) the
        surface."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        z = self.depth(pts) + extra_depth
        x = pts[:, 0] * np.cos(self.yaw) + z * np.sin(self.yaw)
        return self.similarity(np.stack([x, pts[:, 1]], 1))

    def similarity(self, pts: np.ndarray) -> np.ndarray:
        """Image pixels of points of the object's outline.

        The surface is symmetric about its vertical axis, so its outline
        (the limb) does not change with the yaw: only the in-plane
        similarity applies.
        """
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return (pts * self.s) @ self.R.T + self.c


def fill(img: np.ndarray, pts: np.ndarray, color) -> None:
    """Anti-aliased sub-pixel polygon."""
    poly = np.round(pts * (1 << SHIFT)).astype(np.int32)[None]
    cv2.fillPoly(img, poly, color, lineType=cv2.LINE_AA, shift=SHIFT)


def polyline(img: np.ndarray, pts: np.ndarray, color,
             thickness: int = 1) -> None:
    """Anti-aliased sub-pixel open polyline."""
    cv2.polylines(img, [np.round(pts * (1 << SHIFT)).astype(np.int32)],
                  False, color, thickness, cv2.LINE_AA, SHIFT)


def fill_facing(img: np.ndarray, proj: Projector, pts: np.ndarray, color,
                extra_depth: float = 0.0, mask: np.ndarray = None) -> bool:
    """Fill the part of a canonical polygon that faces the viewer.

    Vertices turned behind the object are dropped, so a part near the
    limb is cut where the surface turns away and a part wholly behind it
    is not drawn.

    Returns:
        bool: Whether anything was drawn.
    """
    keep = proj.facing(pts, extra_depth) > 0
    if keep.sum() < 3:
        return False
    px = proj(pts[keep], extra_depth=extra_depth)
    fill(img, px, color)
    if mask is not None:
        fill(mask, px, 255)
    return True


def draw_background(rng: np.random.Generator, size: int,
                    clutter: Sequence[int]) -> np.ndarray:
    """A random colour with a gradient and random background shapes.

    Args:
        rng (np.random.Generator): Random generator.
        size (int): Image side.
        clutter (Sequence[int]): Range of the number of shapes.

    Returns:
        np.ndarray: (size, size, 3) uint8 BGR image.
    """
    bg = np.array(rand_color(rng), np.float32)
    img = np.empty((size, size, 3), np.float32)
    img[:] = bg
    gy, gx = np.mgrid[0:size, 0:size] / float(size)
    gdir = rng.normal(size=2)
    img *= (1.0 + 0.3 * ((gx - 0.5) * gdir[0] + (gy - 0.5) * gdir[1]))[
        ..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    draw_clutter(img, rng, int(rng.integers(clutter[0], clutter[1] + 1)))
    return img


def draw_clutter(img: np.ndarray, rng: np.random.Generator,
                 count: int) -> None:
    """Random ellipses, quadrilaterals, triangles and lines."""
    size = img.shape[0]
    for _ in range(count):
        color = rand_color(rng)
        kind = rng.integers(0, 4)
        c = rng.uniform(0, size, 2)
        r = rng.uniform(0.04, 0.2) * size
        if kind == 0:
            fill(img, ellipse(c[0], c[1], r, r * rng.uniform(0.4, 1.0)),
                 color)
        elif kind == 1:
            ang = rng.uniform(0, np.pi)
            d = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
            d[:, 1] *= rng.uniform(0.3, 1.0)
            rot = np.array([[np.cos(ang), -np.sin(ang)],
                            [np.sin(ang), np.cos(ang)]])
            fill(img, c + (d * r) @ rot.T, color)
        elif kind == 2:
            p = (c + rng.uniform(-1, 1, (3, 2)) * r)
            fill(img, p, color)
        else:
            p0 = tuple(int(v) for v in c)
            p1 = tuple(int(v) for v in c + rng.uniform(-2, 2, 2) * r)
            cv2.line(img, p0, p1, color, int(rng.integers(1, 4)),
                     cv2.LINE_AA)


def light_and_noise(img: np.ndarray, rng: np.random.Generator,
                    lighting: float, noise: float) -> np.ndarray:
    """A random linear lighting gradient and Gaussian pixel noise."""
    size = img.shape[0]
    gy, gx = np.mgrid[0:size, 0:size] / float(size)
    out = img.astype(np.float32)
    light = rng.uniform(0, lighting)
    ldir = rng.normal(size=2)
    ldir /= np.linalg.norm(ldir) + 1e-8
    out *= (1.0 + light * ((gx - 0.5) * ldir[0] +
                           (gy - 0.5) * ldir[1]) * 2)[..., None]
    out += rng.normal(0, rng.uniform(0, noise), out.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def split_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image; train and test streams of a seed
    are disjoint."""
    return np.random.default_rng([int(seed), ('train', 'test').index(split),
                                  int(index)])


def write_world(out_dir: str,
                render: Renderer,
                keypoint_names: Sequence[str],
                category: str,
                num_train: int = 400,
                num_test: int = 150,
                seed: int = 0,
                settings: object = None,
                meta_file: str = 'world.json') -> Dict[str, str]:
    """Write a world: PNG images and COCO keypoint jsons.

    Layout: ``out_dir/images/{train,test}_NNNNN.png``,
    ``out_dir/annotations/{train,test}.json`` (whole-image boxes, so no
    ground truth leaks into the crop; each annotation carries the sampled
    ``yaw`` in degrees) and ``out_dir/<meta_file>`` (category, seed and the
    ranges used). A point outside the image has visibility 0, a point
    hidden by the object itself 1, a visible one 2.

    Args:
        out_dir (str): Output folder (created).
        render (callable): See :data:`Renderer`.
        keypoint_names (Sequence[str]): Names of the G points.
        category (str): COCO category name.
        num_train (int): Number of training images.
        num_test (int): Number of test images.
        seed (int): Seed; train and test use disjoint streams of it.
        settings (dataclass, optional): The ranges, written to the meta
            file.
        meta_file (str): Name of the meta file.

    Returns:
        dict: paths of the ``train`` and ``test`` annotation files.
    """
    if num_train < 1 or num_test < 1:
        raise ValueError(f'{category} world: need at least one train and '
                         f'one test image, got {num_train} and {num_test}')
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    paths = {}
    for split, num in (('train', num_train), ('test', num_test)):
        images: List[dict] = []
        anns: List[dict] = []
        for i in range(num):
            img, kpts, info = render(split_rng(seed, split, i))
            h, w = img.shape[:2]
            name = f'images/{split}_{i:05d}.png'
            if not cv2.imwrite(osp.join(out_dir, name), img):
                raise OSError(f'could not write {osp.join(out_dir, name)}')
            inside = ((kpts >= 0) & (kpts <= np.array([w, h]) - 1)).all(1)
            seen = np.asarray(info.get('visible', np.ones(len(kpts), bool)))
            vis = np.where(inside, np.where(seen, 2.0, 1.0), 0.0)
            kp = np.concatenate([kpts, vis[:, None]], 1)
            images.append(dict(id=i + 1, file_name=name, width=w, height=h))
            anns.append(dict(
                id=i + 1, image_id=i + 1, category_id=1, iscrowd=0,
                bbox=[0.0, 0.0, float(w), float(h)],
                area=float(w * h), num_keypoints=int(inside.sum()),
                keypoints=[round(float(v), 3) for v in kp.reshape(-1)],
                uld_split=split, yaw=round(float(info.get('yaw', 0.0)), 2)))
        data = dict(
            images=images,
            annotations=anns,
            categories=[dict(id=1, name=category, supercategory=category,
                             keypoints=list(keypoint_names), skeleton=[])])
        path = osp.join(out_dir, 'annotations', f'{split}.json')
        with open(path, 'w') as f:
            json.dump(data, f)
        paths[split] = path
    meta = dict(category=category, seed=seed, num_train=num_train,
                num_test=num_test)
    if settings is not None:
        meta.update(asdict(settings))
    with open(osp.join(out_dir, meta_file), 'w') as f:
        json.dump(meta, f, indent=1)
    return paths


def add_config_options(parser, config_cls) -> None:
    """One ``--field-name`` option per field of a world's config dataclass
    (a tuple field takes ``LOW HIGH``), its default the config's."""
    defaults = config_cls()
    for f in fields(config_cls):
        value = getattr(defaults, f.name)
        flag = '--' + f.name.replace('_', '-')
        if isinstance(value, tuple):
            parser.add_argument(
                flag, type=type(value[0]), nargs=2, default=list(value),
                metavar=('LOW', 'HIGH'),
                help=f'range (default {value[0]} {value[1]})')
        else:
            parser.add_argument(flag, type=type(value), default=value,
                                help=f'(default {value})')


def config_from_options(args, config_cls):
    """The config of :func:`add_config_options`' parsed options."""
    kw = {}
    for f in fields(config_cls):
        value = getattr(args, f.name)
        kw[f.name] = tuple(value) if isinstance(value, list) else value
    return config_cls(**kw)
