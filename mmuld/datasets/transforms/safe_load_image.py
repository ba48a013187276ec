# Copyright (c) mmuld contributors. All rights reserved.
"""Image loading that skips unreadable files instead of stopping a run."""
from collections import Counter
from typing import Dict, Optional

from mmengine.logging import print_log
from mmpose.datasets.transforms import LoadImage

from mmuld.registry import TRANSFORMS

#: Distinct unreadable files that get a warning of their own (per process).
MAX_WARNED = 20


@TRANSFORMS.register_module()
class SafeLoadImage(LoadImage):
    """mmpose's :class:`LoadImage` that skips corrupt or missing images.

    A file that cannot be decoded gives ONE warning naming it (the first
    time; later fetches of the same file are only counted), is counted in
    :attr:`skipped` (fetches per file, per process) with its error in
    :attr:`errors`, and the transform returns ``None``. In training,
    mmengine's ``BaseDataset`` then draws another sample, so one bad file
    among thousands costs one warning, not the run; :class:`ULDFaceDataset`
    stops the run with one error when more than a set share of its images
    turn out unreadable. Clustering rounds (:class:`ClusteringRounds`)
    simply get no keypoints for a bad file. In test mode the datasets stop
    with an error naming the file.

    Args:
        **kwargs: Arguments of :class:`mmpose.datasets.LoadImage`.
    """

    skipped: Counter = Counter()
    errors: Dict[str, str] = {}

    def transform(self, results: dict) -> Optional[dict]:
        try:
            out = super().transform(results)
            if out is None or out.get('img') is None:
                raise ValueError('the file is empty or missing')
            return out
        except Exception as e:  # noqa: BLE001 - any decoding failure
            path = results.get('img_path')
            first = path not in SafeLoadImage.skipped
            SafeLoadImage.skipped[path] += 1
            # one line: decoders' messages span several
            line = (str(e).strip().splitlines() or [''])[0][:160]
            SafeLoadImage.errors[path] = f'{type(e).__name__}: {line}'
            n = len(SafeLoadImage.skipped)
            if first and n <= MAX_WARNED:
                print_log(
                    f'skipping unreadable image {path} '
                    f'({SafeLoadImage.errors[path]}); {n} unreadable '
                    'image(s) so far in this process' +
                    ('; further ones are counted without a warning'
                     if n == MAX_WARNED else ''),
                    logger='current',
                    level=30)
            return None
