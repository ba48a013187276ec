# Copyright (c) mmuld contributors. All rights reserved.
"""A world of squares whose parts are the four corners, with a descriptor
map that tells every location of the square apart, for tests."""
import math
from typing import Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def square_world(n: int = 48, seed: int = 0, size: int = 64,
                 stride: int = 4) -> Tuple[Tensor, np.ndarray, Tensor]:
    """Squares (random rotation, scale, shift and grey levels) on a flat
    background and a Fourier code of each map cell's position in its
    square's frame, L2-normalised (what a descriptor map learnt by matching
    instances looks like: every location of the object told apart).

    Args:
        n (int): Images.
        seed (int): Seed.
        size (int): Image side.
        stride (int): Map stride.

    Returns:
        tuple: ``images`` (n, 3, size, size) in [-1, 1], ``corners``
        (n, 4, 2) (x, y) pixels (top-left, top-right, bottom-left,
        bottom-right in the square's frame) and ``desc_map``
        (n, 12, size / stride, size / stride).
    """
    rng = np.random.default_rng(seed)
    images, corners, maps = [], [], []
    unit = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float64)
    cells = (np.arange(size // stride) + 0.5) * stride - 0.5
    gx, gy = np.meshgrid(cells, cells)
    grid = np.stack([gx, gy], -1)
    freqs = np.array([0.5, 1.0, 2.0])
    for _ in range(n):
        ang = math.radians(rng.uniform(-30, 30))
        half = rng.uniform(10, 16)
        centre = size / 2 - 0.5 + rng.uniform(-6, 6, 2)
        rot = np.array([[math.cos(ang), -math.sin(ang)],
                        [math.sin(ang), math.cos(ang)]])
        pts = unit @ rot.T * half + centre
        bg, fg = rng.uniform(0, 0.4), rng.uniform(0.6, 1.0)
        img = np.full((size, size), bg, np.float32)
        cv2.fillConvexPoly(img, np.round(pts[[0, 1, 3, 2]] * 16).astype(
            np.int32), float(fg), lineType=cv2.LINE_AA, shift=4)
        images.append(torch.from_numpy(img * 2 - 1)[None].repeat(3, 1, 1))
        corners.append(pts)
        # each cell's position in the square's frame, Fourier-coded
        local = (grid - centre) @ rot / half
        code = np.concatenate(
            [f(local * w) for w in freqs for f in (np.sin, np.cos)], -1)
        maps.append(torch.from_numpy(code).float().permute(2, 0, 1))
    desc = F.normalize(torch.stack(maps), dim=1)
    return torch.stack(images), np.stack(corners), desc
