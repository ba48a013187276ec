# Copyright (c) mmuld contributors. All rights reserved.
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from mmuld.clustering import KMeansResult, assign_to_centroids, kmeans


@pytest.fixture(scope='module')
def blobs():
    x, y = make_blobs(
        n_samples=3000, centers=8, n_features=16, cluster_std=1.5,
        random_state=3)
    return x.astype(np.float32), y


def _brute_inertia(x, centroids):
    d = ((x[:, None, :] - centroids[None]) ** 2).sum(-1)
    return d.min(1).sum(), d.argmin(1)


@pytest.mark.parametrize('k', [4, 8, 12])
def test_inertia_close_to_sklearn(blobs, k):
    x, _ = blobs
    seeds = range(5)
    ours = [kmeans(x, k, n_iter=100, seed=s, device='cpu') for s in seeds]
    theirs = [
        KMeans(n_clusters=k, n_init=1, random_state=s).fit(x).inertia_
        for s in seeds
    ]
    # single runs may land in different local optima on either side:
    # compare the average and the best run (like n_init=5)
    assert np.mean([r.inertia for r in ours]) <= np.mean(theirs) * 1.03
    assert min(r.inertia for r in ours) <= min(theirs) * 1.03
    ours = ours[0]
    assert isinstance(ours, KMeansResult)
    assert ours.centroids.shape == (k, 16)
    assert ours.labels.shape == (3000, )
    # result is self-consistent: labels / inertia match the centroids
    inertia, labels = _brute_inertia(x.astype(np.float64),
                                     ours.centroids.double().numpy())
    assert ours.inertia == pytest.approx(inertia, rel=1e-4)
    assert (ours.labels.numpy() == labels).mean() > 0.999


def test_recovers_blobs(blobs):
    x, y = blobs
    res = kmeans(torch.from_numpy(x), 8, seed=1, device='cpu')
    # every found cluster is (almost) pure w.r.t. the true blob
    lab = res.labels.numpy()
    purity = sum(np.bincount(y[lab == c]).max() for c in np.unique(lab))
    assert purity / len(y) > 0.99


def test_same_seed_same_result(blobs):
    x, _ = blobs
    a = kmeans(x, 10, seed=7, device='cpu')
    b = kmeans(x, 10, seed=7, device='cpu')
    assert torch.equal(a.labels, b.labels)
    assert torch.equal(a.centroids, b.centroids)
    assert a.inertia == b.inertia


def test_chunked_equals_unchunked(blobs):
    x, _ = blobs
    a = kmeans(x, 6, seed=2, device='cpu')
    b = kmeans(x, 6, seed=2, batch_size=257, device='cpu')
    assert torch.equal(a.labels, b.labels)
    assert torch.allclose(a.centroids, b.centroids, atol=1e-5)


def test_minibatch_close_to_lloyd(blobs):
    x, _ = blobs
    lloyd = kmeans(x, 8, seed=0, device='cpu')
    mb = kmeans(x, 8, seed=0, minibatch=True, batch_size=256, device='cpu')
    assert mb.labels.shape == (3000, )
    assert mb.inertia <= lloyd.inertia * 1.05
    mb2 = kmeans(x, 8, seed=0, minibatch=True, batch_size=256, device='cpu')
    assert torch.equal(mb.labels, mb2.labels)


def test_empty_cluster_reseeded():
    # Three initial centroids coincide: two clusters are empty after the
    # first assignment (ties go to the lowest index) and must be re-seeded.
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], np.float32)
    x = np.concatenate([c + rng.normal(size=(50, 2)) for c in centers])
    x = x.astype(np.float32)
    init = np.stack([x[0], x[0], x[0], x[60]])
    res = kmeans(x, 4, init=init, n_iter=50, device='cpu')
    assert res.n_reseeds >= 2
    assert torch.bincount(res.labels, minlength=4).min() > 0
    assert torch.isfinite(res.centroids).all()
    # without re-seeding two clusters would stay empty; with it the
    # solution reaches the inertia of a k-means++ run within a few percent
    good = kmeans(x, 4, n_iter=50, seed=0, device='cpu')
    assert res.inertia <= good.inertia * 1.05


def test_duplicates_more_clusters_than_distinct_points():
    x = np.repeat(np.array([[0., 0.], [1., 1.]], np.float32), 10, axis=0)
    res = kmeans(x, 3, seed=0, device='cpu')
    assert res.inertia == pytest.approx(0.0, abs=1e-6)
    assert set(res.labels.tolist()) >= {0} and len(set(
        res.labels.tolist())) == 2


def test_bad_input():
    x = np.random.rand(5, 3).astype(np.float32)
    with pytest.raises(ValueError, match='k=6'):
        kmeans(x, 6)
    x_nan = x.copy()
    x_nan[2, 1] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        kmeans(x_nan, 2)
    with pytest.raises(ValueError, match='shape'):
        kmeans(x[0], 2)
    with pytest.raises(ValueError, match='positive'):
        kmeans(x, 0)
    with pytest.raises(ValueError, match='init'):
        kmeans(x, 2, init='bogus')


def test_assign_to_centroids(blobs):
    x, _ = blobs
    c = x[:5]
    labels, d = assign_to_centroids(x, c, batch_size=100, device='cpu')
    ref_d = ((x[:, None] - c[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels.numpy(), ref_d.argmin(1))
    np.testing.assert_allclose(d.numpy(), ref_d.min(1), rtol=1e-4, atol=1e-3)
    _, de = assign_to_centroids(x, c, squared=False, device='cpu')
    np.testing.assert_allclose(de.numpy(), np.sqrt(d.numpy()), rtol=1e-5)
    # NaN centroid rows (missing clusters) are never selected
    c_nan = np.concatenate([np.full((1, 16), np.nan, np.float32), c])
    labels2, _ = assign_to_centroids(x, c_nan, device='cpu')
    np.testing.assert_array_equal(labels2.numpy(), labels.numpy() + 1)


def test_n_init_keeps_the_lowest_inertia():
    """n_init runs from seeds seed, seed + 1, ... and keeps the best one;
    on data where single runs end in different local minima it is never
    worse than any of them and better than the worst."""
    x, _ = make_blobs(n_samples=600, centers=12, n_features=4,
                      cluster_std=1.5, random_state=3)
    x = torch.from_numpy(x).float()
    singles = [float(kmeans(x, 12, seed=s, device='cpu', n_iter=50).inertia)
               for s in range(6)]
    best = kmeans(x, 12, seed=0, device='cpu', n_iter=50, n_init=6)
    assert float(best.inertia) == pytest.approx(min(singles), rel=1e-6)
    assert max(singles) > min(singles) * 1.001  # the runs do differ
    with pytest.raises(ValueError, match='n_init'):
        kmeans(x, 3, n_init=0, device='cpu')
    with pytest.raises(ValueError, match='n_init'):
        kmeans(x, 3, init=x[:3], n_init=2, device='cpu')
