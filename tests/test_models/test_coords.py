# Copyright (c) mmuld contributors. All rights reserved.
"""Image <-> input-crop coordinates (``mmuld.models.utils.coords``)."""
import numpy as np
import pytest
import torch

from mmuld.models.utils import (image_to_input_coords, input_to_image_coords,
                                roi_to_input)

CENTER, SCALE, SIZE = [50.0, 60.0], [100.0, 120.0], [64, 48]


def test_hand_derived_values():
    # the crop spans x in [0, 100], y in [0, 120] of the image
    pts = np.array([[50.0, 60.0], [0.0, 0.0], [100.0, 120.0], [25.0, 90.0]])
    exp = torch.tensor([[32.0, 24.0], [0.0, 0.0], [64.0, 48.0],
                        [16.0, 36.0]])
    got = image_to_input_coords(pts, CENTER, SCALE, SIZE)
    torch.testing.assert_close(got, exp)
    torch.testing.assert_close(
        input_to_image_coords(exp, CENTER, SCALE, SIZE),
        torch.from_numpy(pts).float())
    torch.testing.assert_close(
        roi_to_input([25.0, 30.0, 75.0, 90.0], CENTER, SCALE, SIZE),
        torch.tensor([16.0, 12.0, 48.0, 36.0]))
    with pytest.raises(ValueError, match='input_scale'):
        image_to_input_coords(pts, CENTER, [0.0, 1.0], SIZE)


def test_old_import_paths_still_work():
    from mmuld.models import pose_estimators
    from mmuld.models.pose_estimators import zeroshot_estimator
    for name in ('image_to_input_coords', 'input_to_image_coords',
                 'roi_to_input'):
        assert getattr(pose_estimators, name) is globals()[name]
        assert getattr(zeroshot_estimator, name) is globals()[name]
