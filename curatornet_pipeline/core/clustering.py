"""Visual clusters of the catalogue, as the paper builds them for its sampling guidelines.

z-score the ResNet embeddings over the catalogue, reduce them with PCA to 200 dimensions, run k-means
(k = 100) several times with different seeds and keep the run with the highest silhouette
coefficient (estimated on a fixed random sample of the artworks once the catalogue is larger than
``silhouette_sample_size``: the exact coefficient costs O(N^2) per run). The clusters drive the negative
sampling of the triplets; the PCA vectors are also used for the cosine tests there (near-duplicates, strategy 6's visual-confidence margin).

The authors published their clusters as ``clusters.json`` (artwork id -> cluster); ``read_clusters_json`` and
``given_clusters`` use those instead of k-means, to reproduce their triplets' cluster rules exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import euclidean_distances, silhouette_score
from threadpoolctl import threadpool_limits

from curatornet_pipeline.core.errors import InputDataError
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


def _pca(x: np.ndarray, pca_components: int, seed: int) -> tuple[np.ndarray, float]:
    """PCA vectors (float32) of the z-scored embeddings and the share of variance they keep."""
    n_samples, n_features = x.shape
    z = zscore_catalogue(x, dtype=np.float64)
    pca = PCA(n_components=min(pca_components, n_samples, n_features), random_state=seed)
    return pca.fit_transform(z).astype(np.float32), float(np.sum(pca.explained_variance_ratio_))


def _silhouette(points: np.ndarray, labels: np.ndarray, distances: np.ndarray | None) -> float:
    """Silhouette of ``labels`` on ``points`` (precomputed ``distances`` when given); -1 for a degenerate labelling."""
    n_used = len(np.unique(labels))
    if n_used < 2 or n_used >= len(labels):
        return -1.0  # degenerate (identical points): worst possible silhouette, never chosen over a real one
    if distances is not None:
        return float(silhouette_score(distances, labels, metric="precomputed"))
    return float(silhouette_score(points, labels, metric="euclidean"))


def _cluster(
    x: np.ndarray,
    n_clusters: int,
    n_runs: int,
    pca_components: int,
    seed: int,
    progress: Callable[[int, int, float], None] | None,
    silhouette_sample_size: int | None,
) -> ClusteringResult:
    n_samples = len(x)
    vectors, explained = _pca(x, pca_components, seed)

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
        score = _silhouette(points, labels if sample is None else labels[sample], distances)
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
        explained_variance_ratio=explained,
        silhouette_points=len(points),
    )


def given_clusters(
    embeddings: np.ndarray, labels: np.ndarray, pca_components: int = 200, seed: int = 0
) -> ClusteringResult:
    """A ClusteringResult for clusters given from outside (the authors' ``clusters.json``): no k-means.

    ``labels`` (N,) are renumbered densely (0..k-1 in order of the given labels). The PCA vectors are computed
    as for ``cluster_embeddings`` (the samplers' cosine tests need them), and the one "run" carries the exact
    silhouette of the given labels on them (run seed -1: nothing was drawn).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels)
    if labels.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},) like the embeddings, got {labels.shape}")
    _, dense = np.unique(labels, return_inverse=True)
    vectors, explained = _pca(x, pca_components, seed)
    with threadpool_limits(limits=1):
        score = _silhouette(vectors, dense, None)
    return ClusteringResult(
        labels=dense.astype(np.int32),
        pca_vectors=vectors,
        silhouettes=[score],
        run_seeds=[-1],
        chosen_run=0,
        explained_variance_ratio=explained,
        silhouette_points=len(x),
    )


CLUSTERS_FILE = "clusters.json"


def read_clusters_json(path: Path, artwork_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The authors' ``clusters.json`` (a JSON object: artwork id -> integer cluster) in ``artwork_ids`` order.

    Returns (labels (N,) int64, ids in the file but not in the catalogue, sorted: they are ignored, as rows
    of the embeddings file are). Every catalogue artwork needs a cluster; errors name the file and the entry.
    """
    path = Path(path)
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(path, f"not a readable JSON file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(mapping, dict):
        raise InputDataError(path, f"expected a JSON object mapping artwork id to cluster, got {type(mapping).__name__}")
    for artwork_id, cluster in mapping.items():
        if isinstance(cluster, bool) or not isinstance(cluster, int):
            raise InputDataError(path, f"artwork {artwork_id!r}: cluster must be an integer, got {cluster!r}")
    wanted = list(artwork_ids)
    missing = [a for a in wanted if a not in mapping]
    if missing:
        raise InputDataError(path, f"{len(missing)} catalogue artworks have no cluster, e.g. {missing[:5]}")
    extra = sorted(set(mapping) - set(wanted))
    return np.array([mapping[a] for a in wanted], dtype=np.int64), extra
