"""Visual clusters of the catalogue, as the paper builds them for its sampling guidelines.

z-score the ResNet embeddings over the catalogue, reduce them with PCA to 200 dimensions, run k-means
(k = 100) several times with different seeds and keep the run with the highest silhouette
coefficient (estimated on a fixed random sample of the artworks once the catalogue is larger than
``silhouette_sample_size``: the exact coefficient costs O(N^2) per run). The clusters drive the negative
sampling of the triplets; the PCA vectors are also used for the cosine tests there (near-duplicates, strategy 6's visual-confidence margin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import euclidean_distances, silhouette_score
from threadpoolctl import threadpool_limits

from curatornet_pipeline.core.features import zscore_catalogue

# Above this many items the (N, N) distance matrix (float32: 4 * N**2 bytes, 256 MB here) is not kept
# in memory and every run's silhouette recomputes distances in chunks instead.
_MAX_ITEMS_FOR_SHARED_DISTANCES = 8192
# Silhouette points by default: the sampled estimate costs the same at any catalogue size and, on the demo
# gallery (6,040 artworks), picks the same run as the exact coefficient (README, "How cost grows").
DEFAULT_SILHOUETTE_SAMPLE_SIZE = 4000


@dataclass
class ClusteringResult:
    labels: np.ndarray  # int32 (N,): cluster of each artwork_idx, from the chosen run
    pca_vectors: np.ndarray  # float32 (N, n_components): PCA of the z-scored embeddings
    silhouettes: list[float]  # silhouette coefficient of each run, in seed order
    run_seeds: list[int]  # k-means random_state of each run
    chosen_run: int  # index into silhouettes / run_seeds of the kept run
    explained_variance_ratio: float  # share of the z-scored variance kept by the PCA
    silhouette_points: int = 0  # how many artworks the silhouettes were computed on (all, or the sample)

    def cluster_sizes(self) -> np.ndarray:
        """Number of artworks in each cluster (index = cluster label)."""
        return np.bincount(self.labels, minlength=int(self.labels.max()) + 1 if len(self.labels) else 0)


def cluster_embeddings(
    embeddings: np.ndarray,
    n_clusters: int = 100,
    n_runs: int = 20,
    pca_components: int = 200,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    max_threads: int | None = 1,
    silhouette_sample_size: int | None = DEFAULT_SILHOUETTE_SAMPLE_SIZE,
) -> ClusteringResult:
    """Cluster item embeddings: StandardScaler -> PCA -> best-of-``n_runs`` k-means by silhouette.

    ``embeddings`` is (N, D), aligned with artwork_idx. PCA keeps ``min(pca_components, N, D)``
    components (seeded with ``seed``). Run ``i`` uses ``KMeans(n_init=1, random_state=seed + i)``; the
    silhouette is computed on the PCA vectors (Euclidean). Ties keep the earliest run. With more than
    ``silhouette_sample_size`` artworks (None or 0: never) every run's silhouette is the exact silhouette of
    the same ``silhouette_sample_size`` artworks, drawn once with seed ``seed`` — scikit-learn's
    ``silhouette_score(sample_size=..., random_state=seed)``, with the sample's distances computed once for
    all runs.
    ``progress(run_index, n_runs, silhouette)`` is called after each run.
    ``max_threads`` caps the BLAS/OpenMP threads (None: library default). It is 1 by default because
    at catalogue scale one thread is as fast as two (6,040 x 2,048, k=100, 20 runs on 2 idle cores:
    12.5 s with 1 thread, 13.7 s with 2) while OpenMP k-means degrades many-fold when its cores are
    shared with other work, as when Dagster runs steps in parallel (on a busy 2-core machine: 19 s
    with 1 thread, 93 s with 2). A fixed thread count also keeps labels independent of the machine.
    Raises ``ValueError`` when the input is not a finite 2-d array or ``n_clusters`` is impossible
    (the silhouette needs 2 <= k <= N - 1).
    """
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array (items x features), got shape {x.shape}")
    n_samples, n_features = x.shape
    if n_clusters < 2:
        raise ValueError(f"n_clusters must be at least 2 for a silhouette coefficient, got {n_clusters}")
    if n_clusters >= n_samples:
        raise ValueError(
            f"n_clusters={n_clusters} is impossible for {n_samples} artworks: k-means with a silhouette "
            f"needs n_clusters <= n_samples - 1 = {n_samples - 1}; lower n_clusters"
        )
    if n_runs < 1:
        raise ValueError(f"n_runs must be at least 1, got {n_runs}")
    if pca_components < 1:
        raise ValueError(f"pca_components must be at least 1, got {pca_components}")
    if silhouette_sample_size is not None and silhouette_sample_size < 0:
        raise ValueError(f"silhouette_sample_size must be >= 0 (0: all artworks), got {silhouette_sample_size}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"embeddings contain a non-finite value (first at artwork_idx {bad[0]}, feature {bad[1]})")
    with threadpool_limits(limits=max_threads):
        return _cluster(x, n_clusters, n_runs, pca_components, seed, progress, silhouette_sample_size or None)


def _cluster(
    x: np.ndarray,
    n_clusters: int,
    n_runs: int,
    pca_components: int,
    seed: int,
    progress: Callable[[int, int, float], None] | None,
    silhouette_sample_size: int | None,
) -> ClusteringResult:
    n_samples, n_features = x.shape
    z = zscore_catalogue(x, dtype=np.float64)
    n_components = min(pca_components, n_samples, n_features)
    pca = PCA(n_components=n_components, random_state=seed)
    vectors = pca.fit_transform(z).astype(np.float32)

    sample = None  # None: the silhouette uses every artwork
    if silhouette_sample_size is not None and n_samples > silhouette_sample_size:
        # The same draw as silhouette_score(sample_size=..., random_state=seed), so the two agree exactly.
        sample = np.random.RandomState(seed).permutation(n_samples)[:silhouette_sample_size]
    points = vectors if sample is None else vectors[sample]
    # Every run scores the same points, so pairwise distances are computed once and shared when they fit.
    distances = None
    if len(points) <= _MAX_ITEMS_FOR_SHARED_DISTANCES:
        distances = euclidean_distances(points).astype(np.float32, copy=False)
        np.fill_diagonal(distances, 0.0)

    silhouettes: list[float] = []
    run_seeds: list[int] = []
    best_labels: np.ndarray | None = None
    best_score = -np.inf
    for i in range(n_runs):
        run_seed = seed + i
        labels = KMeans(n_clusters=n_clusters, n_init=1, random_state=run_seed).fit_predict(vectors)
        scored = labels if sample is None else labels[sample]
        n_scored_clusters = len(np.unique(scored))
        if n_scored_clusters < 2 or n_scored_clusters >= len(scored):
            score = -1.0  # degenerate run (identical points): worst possible silhouette, never chosen over a real one
        elif distances is not None:
            score = float(silhouette_score(distances, scored, metric="precomputed"))
        else:
            score = float(silhouette_score(points, scored, metric="euclidean"))
        silhouettes.append(score)
        run_seeds.append(run_seed)
        if score > best_score:
            best_score, best_labels = score, labels
        if progress is not None:
            progress(i, n_runs, score)

    assert best_labels is not None
    return ClusteringResult(
        labels=best_labels.astype(np.int32),
        pca_vectors=vectors,
        silhouettes=silhouettes,
        run_seeds=run_seeds,
        chosen_run=int(np.argmax(silhouettes)),
        explained_variance_ratio=float(np.sum(pca.explained_variance_ratio_)),
        silhouette_points=len(points),
    )
