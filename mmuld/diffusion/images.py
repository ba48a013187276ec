# Copyright (c) mmuld contributors. All rights reserved.
"""The training images of a small diffusion model, as one tensor."""
import hashlib
import json
import os
import os.path as osp
import warnings
from typing import List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from mmuld.datasets.image_folder_dataset import IMG_EXTENSIONS


def list_images(image_dir: str, ann_file: Optional[str] = None) -> List[str]:
    """The image files to train on, sorted.

    Args:
        image_dir (str): Folder searched recursively for images.
        ann_file (str, optional): A COCO json; when given, only the images
            it lists (``file_name`` relative to ``image_dir``) are used, so
            that a world's test images stay out of training.

    Returns:
        list[str]: Absolute paths.

    Raises:
        FileNotFoundError: ``image_dir`` or a listed image is missing.
        ValueError: No image was found.
    """
    if not osp.isdir(image_dir):
        raise FileNotFoundError(f'Image folder not found: {image_dir!r}')
    if ann_file is not None:
        with open(ann_file, encoding='utf-8') as f:
            images = json.load(f).get('images', [])
        paths = sorted({osp.join(image_dir, im['file_name']) for im in images})
        missing = [p for p in paths if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} image(s) listed in {ann_file!r} are not in '
                f'{image_dir!r}, e.g. {missing[0]!r}')
    else:
        paths = sorted(
            osp.join(root, name) for root, _, names in os.walk(image_dir)
            for name in names if name.lower().endswith(IMG_EXTENSIONS))
    if not paths:
        raise ValueError(f'No images found in {image_dir!r}' + (
            f' for {ann_file!r}' if ann_file else ''))
    return [osp.abspath(p) for p in paths]


def load_images(paths: List[str], size: int) -> Tuple[torch.Tensor, List[str]]:
    """Read, centre-crop to a square and resize images to ``size``.

    Unreadable files are skipped with a warning that names them.

    Args:
        paths (list[str]): Image files.
        size (int): Output side in pixels.

    Returns:
        tuple: ``(images, kept)``: a float tensor (N, 3, size, size) in
        [-1, 1] (RGB) and the paths that were read.

    Raises:
        ValueError: No image could be read.
    """
    arrays, kept = [], []
    for path in paths:
        try:
            with Image.open(path) as im:
                im = im.convert('RGB')
                w, h = im.size
                s = min(w, h)
                left, top = (w - s) // 2, (h - s) // 2
                im = im.crop((left, top, left + s, top + s)).resize(
                    (size, size), Image.BICUBIC)
                arrays.append(np.asarray(im, dtype=np.uint8))
                kept.append(path)
        except (OSError, ValueError) as err:
            warnings.warn(f'skipping unreadable image {path!r}: {err}')
    if not arrays:
        raise ValueError(f'None of the {len(paths)} images could be read')
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0, kept


def images_fingerprint(paths: List[str], size: int) -> str:
    """A hash of the image list (paths, sizes, mtimes) and the size."""
    h = hashlib.sha256(str(size).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f'{p}|{st.st_size}|{int(st.st_mtime)}'.encode())
    return h.hexdigest()[:16]
