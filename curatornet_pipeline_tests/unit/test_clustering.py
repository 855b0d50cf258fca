"""Visual clustering: separated blobs are recovered, runs are recorded, results are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from curatornet_pipeline.core.clustering import cluster_embeddings


def _blobs(n_per_blob: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 10.0, size=(3, 2048)).astype(np.float32)
    truth = np.repeat(np.arange(3), n_per_blob)
    points = centres[truth] + rng.normal(0.0, 1.0, size=(len(truth), 2048)).astype(np.float32)
    order = rng.permutation(len(truth))  # interleave blobs so index order says nothing
    return points[order], truth[order]


def test_each_blob_becomes_one_cluster():
    points, truth = _blobs()
    result = cluster_embeddings(points, n_clusters=3, n_runs=4, pca_components=10, seed=1)
    assert result.labels.dtype == np.int32 and result.labels.shape == (60,)
    for blob in range(3):
        assert len(np.unique(result.labels[truth == blob])) == 1  # a blob is never split
    assert len(np.unique(result.labels)) == 3  # and never merged with another
    assert result.pca_vectors.shape == (60, 10) and result.pca_vectors.dtype == np.float32
    assert 0.0 < result.explained_variance_ratio <= 1.0


def test_one_silhouette_per_run_and_best_run_chosen():
    points, _ = _blobs()
    result = cluster_embeddings(points, n_clusters=3, n_runs=5, pca_components=10, seed=7)
    assert len(result.silhouettes) == 5
    assert result.run_seeds == [7, 8, 9, 10, 11]
    assert result.chosen_run == int(np.argmax(result.silhouettes))
    assert max(result.silhouettes) > 0.8  # well-separated blobs
    assert result.cluster_sizes().tolist() == [20, 20, 20]


def test_progress_reports_every_run():
    points, _ = _blobs()
    seen = []
    cluster_embeddings(points, n_clusters=3, n_runs=3, pca_components=5, progress=lambda i, n, s: seen.append((i, n)))
    assert seen == [(0, 3), (1, 3), (2, 3)]


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(80, 64)).astype(np.float32)  # no structure: labels depend on the seed
    a = cluster_embeddings(points, n_clusters=5, n_runs=3, pca_components=20, seed=11)
    b = cluster_embeddings(points, n_clusters=5, n_runs=3, pca_components=20, seed=11)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.pca_vectors, b.pca_vectors)
    assert a.silhouettes == b.silhouettes


def test_pca_components_capped_by_data_size():
    points, _ = _blobs(n_per_blob=5)
    result = cluster_embeddings(points, n_clusters=3, n_runs=1, pca_components=200)
    assert result.pca_vectors.shape == (15, 15)


def test_impossible_cluster_count_is_a_clear_error():
    points, _ = _blobs(n_per_blob=2)
    with pytest.raises(ValueError, match="n_clusters=6 is impossible for 6 artworks"):
        cluster_embeddings(points, n_clusters=6, n_runs=1)
    with pytest.raises(ValueError, match="at least 2"):
        cluster_embeddings(points, n_clusters=1, n_runs=1)


def test_non_finite_embeddings_rejected():
    points, _ = _blobs(n_per_blob=3)
    points[4, 17] = np.nan
    with pytest.raises(ValueError, match="artwork_idx 4, feature 17"):
        cluster_embeddings(points, n_clusters=2, n_runs=1)


def test_sampled_silhouette_picks_the_same_run_as_the_exact_one_and_is_close():
    """900 artworks in 8 blobs where one k-means run of six lands in a worse optimum; silhouettes on 600 vs all."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0.0, 4.0, size=(8, 32))
    points = (centres[rng.integers(0, 8, 900)] + rng.normal(size=(900, 32))).astype(np.float32)
    common = dict(n_clusters=8, n_runs=6, pca_components=16, seed=2)
    exact = cluster_embeddings(points, **common, silhouette_sample_size=0)
    sampled = cluster_embeddings(points, **common, silhouette_sample_size=600)
    assert exact.silhouette_points == 900 and sampled.silhouette_points == 600
    assert max(exact.silhouettes) - min(exact.silhouettes) > 0.1  # the runs differ, so the choice means something
    assert np.argmin(sampled.silhouettes) == np.argmin(exact.silhouettes)
    assert sampled.chosen_run == exact.chosen_run
    np.testing.assert_array_equal(sampled.labels, exact.labels)
    assert abs(sampled.silhouettes[sampled.chosen_run] - exact.silhouettes[exact.chosen_run]) < 0.01
    # The estimator is scikit-learn's own sampled silhouette with the same seed.
    reference = silhouette_score(sampled.pca_vectors, sampled.labels, sample_size=600, random_state=2)
    assert sampled.silhouettes[sampled.chosen_run] == pytest.approx(reference, rel=1e-5)
    # Catalogues no larger than the sample use every artwork: the exact coefficient, unchanged.
    small = cluster_embeddings(points[:500], **common, silhouette_sample_size=600)
    assert small.silhouette_points == 500
    with pytest.raises(ValueError, match="silhouette_sample_size"):
        cluster_embeddings(points, **common, silhouette_sample_size=-1)
