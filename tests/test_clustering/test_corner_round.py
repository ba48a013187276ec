# Copyright (c) mmuld contributors. All rights reserved.
"""Why a round takes its candidates at image corners, on known answers.

A world of squares (random rotation, scale, shift and grey levels) whose
parts are the four corners, and a descriptor map that, like one learnt by
matching instances to each other, tells every location of the square apart
(a Fourier code of the location in the square's own frame). With the
image's corners as candidates the round puts its landmarks on the four
corners; with candidates spread over the object (the strongest cells of a
detector that fires everywhere) it puts them between the corners.
"""
import numpy as np
import torch

from mmuld.clustering.clustering_round import peak_pseudo_labels
from mmuld.clustering.dense_decoding import similarity_peaks
from mmuld.evaluation.functional.landmark_accuracy import \
    per_landmark_accuracy
from mmuld.models.utils import sample_descriptors
from mmuld.models.utils.interest_points import (corner_candidates,
                                                corner_strength)
from mmuld.testing.square_world import square_world

SIZE, STRIDE, K = 64, 4, 4


def _world():
    return square_world(size=SIZE, stride=STRIDE)


def _round(desc_map, cand, images=None):
    def decode(cents, with_desc):
        res = similarity_peaks(desc_map, cents, STRIDE, radius=0.05 * SIZE,
                               border=1, with_descriptors=with_desc)
        if images is not None:  # rank by margin x corner response
            res['saliency'] = corner_strength(images, res['keypoints'], 5)
        return res

    cand_desc = sample_descriptors(desc_map, cand, STRIDE)
    bank, _, _ = peak_pseudo_labels(
        cand_desc.reshape(-1, desc_map.shape[1]), desc_map.shape[0], K,
        decode, overcluster=4, separation=0.08 * SIZE, n_init=3)
    return bank.keypoints.numpy()


def test_corner_candidates_put_the_landmarks_on_the_corners():
    images, corners, desc_map = _world()
    side = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=-1)
    # the four strongest corners of each image (the square's)
    cand, valid = corner_candidates(images, num=4, window=5, spacing=3)
    assert valid.all()
    acc = per_landmark_accuracy(_round(desc_map, cand), corners, side,
                                thr=0.1)['gt_accuracy']
    assert acc.min() >= 0.9, acc

    # the same round from cells spread over the square (a detector that
    # fires on the whole object): landmarks between the corners
    rng = np.random.default_rng(1)
    spread = torch.from_numpy(np.stack([
        c.mean(0) + rng.uniform(-0.8, 0.8, (32, 2)) * s / 2
        for c, s in zip(corners, side)])).float()
    acc_spread = per_landmark_accuracy(_round(desc_map, spread), corners,
                                       side, thr=0.1)['gt_accuracy']
    assert acc_spread.max() < 0.5, acc_spread


def test_ranking_by_corner_response_prefers_corners_to_edges():
    # eight corners per image: the square's four and four weak ones on its
    # edges. Every place of the square is as sharply peaked as any other,
    # so the margin alone keeps edge points; weighing it by the corner
    # response at the peaks keeps the corners
    images, corners, desc_map = _world()
    side = np.linalg.norm(corners[:, 0] - corners[:, 1], axis=-1)
    cand, valid = corner_candidates(images, num=8, window=5, spacing=3)
    cand = torch.where(valid[..., None], cand, cand[:, :1])
    by_margin = per_landmark_accuracy(_round(desc_map, cand), corners, side,
                                      thr=0.1)['gt_accuracy']
    ranked = per_landmark_accuracy(_round(desc_map, cand, images), corners,
                                   side, thr=0.1)['gt_accuracy']
    assert by_margin.min() < 0.5, by_margin
    assert ranked.min() >= 0.9, ranked
