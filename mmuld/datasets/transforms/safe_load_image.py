# Copyright (c) mmuld contributors. All rights reserved.
"""Image loading that skips unreadable files instead of stopping a run."""
from collections import Counter
from typing import Optional

from mmengine.logging import print_log
from mmpose.datasets.transforms import LoadImage

from mmuld.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SafeLoadImage(LoadImage):
    """mmpose's :class:`LoadImage` that skips corrupt or missing images.

    A file that cannot be decoded gives a warning naming it, is counted in
    :attr:`skipped` (per process), and the transform returns ``None``: in
    training, mmengine's ``BaseDataset`` then draws another sample, so one
    bad file among thousands costs one warning, not the run. Clustering
    rounds of :class:`PseudoLabelHook` simply get no keypoints for it.
    In test mode mmengine refuses ``None``, so evaluation still stops with
    an error naming the file.

    Args:
        **kwargs: Arguments of :class:`mmpose.datasets.LoadImage`.
    """

    skipped: Counter = Counter()

    def transform(self, results: dict) -> Optional[dict]:
        try:
            out = super().transform(results)
            if out is None or out.get('img') is None:
                raise ValueError('the file is empty or missing')
            return out
        except Exception as e:  # noqa: BLE001 - any decoding failure
            path = results.get('img_path')
            SafeLoadImage.skipped[path] += 1
            print_log(
                f'skipping unreadable image {path} ({type(e).__name__}: '
                f'{e}); {sum(SafeLoadImage.skipped.values())} skipped so '
                'far in this process',
                logger='current',
                level=30)
            return None
