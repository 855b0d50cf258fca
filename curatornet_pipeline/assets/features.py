"""Features group: ResNet50 image embeddings and the silhouette-selected visual clusters."""

import json
import time
import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import plots, tables
from curatornet_pipeline.executors import accelerated_step_tags
from curatornet_pipeline.assets.metadata import image_markdown, plot_key, rounded, table_metadata
from curatornet_pipeline.configs import ClusteringConfig, EmbeddingConfig
from curatornet_pipeline.core.clustering import CLUSTERS_FILE, cluster_embeddings, given_clusters, read_clusters_json
from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.embeddings import (
    build_resnet50_backbone,
    check_weights_setting,
    embed_images,
    image_content_hashes,
    read_embeddings_file,
    vector_content_hashes,
    validate_embedding_matrix,
)
from curatornet_pipeline.core.ingest import find_image_files
from curatornet_pipeline.core.precision import resolve_precision
from curatornet_pipeline.core.preflight import (
    NPY_NAME,
    embedding_source,
    pca_note,
    resolve_n_clusters,
)
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline.storage import read_frame, read_vectors, replace_tables, require_table, vector_column

GROUP = "features"


def _resolve_weights(config: EmbeddingConfig, gallery: GallerySource) -> str:
    # The demo's images are abstract patterns, so ImageNet features add nothing there; everywhere else
    # ImageNet is the method's choice. Either way the choice is explicit in metadata, never a fallback.
    if config.weights != "auto":
        return check_weights_setting(config.weights)
    return "random" if gallery.is_demo else "imagenet"


def _resolve_image_size(config: EmbeddingConfig, gallery: GallerySource) -> int:
    if config.image_size > 0:
        return config.image_size
    # The demo gallery was calibrated (VisRank AUC ~0.7) at its native 64 px; upsampling would only cost time.
    return 64 if gallery.is_demo else 224


@dg.asset(
    group_name=GROUP,
    kinds={"pytorch", "duckdb"},
    deps=["raw_artworks", "source_files"],
    pool="duckdb",
    op_tags=accelerated_step_tags(),
    description=(
        "One 2048-d ResNet50 embedding per artwork (penultimate layer, ImageNet preprocessing), computed from the "
        "images or loaded from resnet_embeddings.npy. Weights: ImageNet, a local file, or a seeded random init "
        "(the synthetic demo's default) — stated in metadata."
    ),
)
def resnet50_embeddings(
    context: dg.AssetExecutionContext, config: EmbeddingConfig, gallery: GallerySource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    folder = gallery.folder()
    with duckdb.get_connection() as con:
        require_table(con, tables.RAW_ARTWORKS)
        artworks = read_frame(con, f"SELECT artwork_idx, artwork_id FROM {tables.RAW_ARTWORKS} ORDER BY artwork_idx")
    ids = artworks["artwork_id"].tolist()
    use_npy = embedding_source(folder, config.source) == "npy"
    metadata: dict = {}
    started = time.perf_counter()
    if use_npy:
        context.log.info(f"loading precomputed embeddings from {folder / NPY_NAME}")
        loaded = read_embeddings_file(folder / NPY_NAME, ids)
        embeddings = loaded.vectors
        metadata["embedding_source"] = f"precomputed file {folder / NPY_NAME}"
        metadata["embeddings_file_form"] = loaded.form
        metadata["embedding_rows_dropped"] = len(loaded.dropped_ids)
        if loaded.dropped_ids:
            context.log.warning(loaded.dropped_note())
            metadata["embedding_rows_dropped_note"] = loaded.dropped_note()
        metadata["weights"] = "as computed by whoever produced the .npy file"
        embedder = {"source": "npy"}
        content_keys = vector_content_hashes(embeddings)
    else:
        weights = _resolve_weights(config, gallery)
        image_size = _resolve_image_size(config, gallery)
        paths = find_image_files(folder, ids)
        model = build_resnet50_backbone(weights, seed=config.seed)
        context.log.info(f"embedding {len(ids)} images with ResNet50 ({weights} weights) at {image_size}px")
        last_logged = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last_logged[0] > 10 or done == total:
                last_logged[0] = now
                rate = done / max(now - started, 1e-9)
                context.log.info(f"embedded {done}/{total} images ({rate:.1f} images/s)")

        embeddings = embed_images(
            [paths[i] for i in ids],
            model,
            image_size=image_size,
            batch_size=config.batch_size,
            device=config.device,
            progress=progress,
            precision=config.precision,
        )
        elapsed = time.perf_counter() - started
        metadata["embedding_source"] = f"images in {folder / 'images'}"
        metadata["weights"] = {
            "random": f"seeded random init (seed {config.seed}): the demo's images are abstract, ImageNet adds nothing",
            "imagenet": "torchvision ResNet50 ImageNet weights (IMAGENET1K_V2)",
        }.get(weights, f"local weights file {weights}")
        metadata["image_size"] = image_size
        precision = resolve_precision(config.precision, resolve_device(config.device))
        metadata["precision"] = precision
        metadata["images_per_second"] = rounded(len(ids) / max(elapsed, 1e-9))
        embedder = {
            "source": "images",
            "weights": weights,
            "seed": config.seed,
            "image_size": image_size,
            "precision": precision,
        }
        content_keys = image_content_hashes([paths[i] for i in ids])
    validate_embedding_matrix(embeddings, metadata["embedding_source"])
    # The content key (image bytes or vector hash) and the embedder let serving reuse these vectors for
    # unchanged images and embed only new ones the same way (assets/serving.py).
    frame = pd.DataFrame(
        {
            "artwork_idx": artworks["artwork_idx"],
            "artwork_id": ids,
            "content_key": content_keys,
            "embedder": json.dumps(embedder, sort_keys=True),
            "embedding": vector_column(embeddings),
        }
    )
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.RESNET50_EMBEDDINGS: frame})
        metadata.update(table_metadata(con, tables.RESNET50_EMBEDDINGS))
    metadata["seconds"] = rounded(time.perf_counter() - started)
    metadata["mean_vector_norm"] = rounded(np.linalg.norm(embeddings, axis=1).mean())
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name=GROUP,
    kinds={"scikitlearn", "duckdb"},
    deps=["resnet50_embeddings"],
    pool="duckdb",
    description=(
        "Visual clusters: z-scored embeddings -> PCA(200) -> k-means (k=100) run 20 times with different seeds; "
        "the run with the highest silhouette coefficient is kept. Also stores the PCA vectors used for the "
        "visual-confidence test of sampling strategy 6."
    ),
)
def visual_clusters(
    context: dg.AssetExecutionContext, config: ClusteringConfig, gallery: GallerySource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    clusters_file = gallery.folder() / CLUSTERS_FILE
    use_file = config.clusters == "file" or (config.clusters == "auto" and clusters_file.is_file())
    with duckdb.get_connection() as con:
        require_table(con, tables.RESNET50_EMBEDDINGS)
        ids = read_frame(
            con, f"SELECT artwork_idx, artwork_id FROM {tables.RESNET50_EMBEDDINGS} ORDER BY artwork_idx"
        )
        embeddings = read_vectors(
            con, f"SELECT embedding FROM {tables.RESNET50_EMBEDDINGS} ORDER BY artwork_idx", "embedding"
        )
    started = time.perf_counter()
    source_metadata: dict = {}
    if use_file:
        labels, ignored = read_clusters_json(clusters_file, ids["artwork_id"].tolist())
        result = given_clusters(embeddings, labels, config.pca_components, config.seed)
        n_clusters = int(result.labels.max()) + 1
        note = f"{n_clusters} clusters as given in {clusters_file} (k-means not run; config clusters={config.clusters!r})"
        source_metadata = {"clusters_source": f"file {clusters_file}", "clusters_file_ids_ignored": len(ignored)}
        if ignored:
            context.log.warning(f"{clusters_file}: {len(ignored)} artwork ids are not in the catalogue, e.g. {ignored[:5]}")
        context.log.info(note)
    else:
        n_clusters, note = resolve_n_clusters(config.n_clusters, len(embeddings))
        for message in (note, pca_note(config.pca_components, *embeddings.shape)):
            if message:
                context.log.info(message)
        result = cluster_embeddings(
            embeddings,
            n_clusters=n_clusters,
            n_runs=config.n_runs,
            pca_components=config.pca_components,
            seed=config.seed,
            silhouette_sample_size=config.silhouette_sample_size,
            progress=lambda run, n_runs, score: context.log.info(
                f"k-means run {run + 1}/{n_runs}: silhouette {score:.4f}"
            ),
        )
        source_metadata = {"clusters_source": f"computed: best of {config.n_runs} k-means runs by silhouette"}
    clusters = pd.DataFrame(
        {
            "artwork_idx": ids["artwork_idx"],
            "artwork_id": ids["artwork_id"],
            "cluster": result.labels.astype(np.int32),
            "pca": vector_column(result.pca_vectors),
        }
    )
    runs = pd.DataFrame(
        {
            "run": np.arange(len(result.silhouettes)),
            "seed": result.run_seeds,
            "silhouette": result.silhouettes,
            "chosen": np.arange(len(result.silhouettes)) == result.chosen_run,
            "n_clusters": n_clusters,
        }
    )
    with duckdb.get_connection() as con:
        replace_tables(
            con,
            {tables.VISUAL_CLUSTERS: clusters, tables.CLUSTERING_RUNS: runs},
            vector_widths={tables.VISUAL_CLUSTERS: result.pca_vectors.shape[1]},
        )
        metadata = table_metadata(con, tables.VISUAL_CLUSTERS)
    sizes = np.bincount(result.labels, minlength=n_clusters)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **source_metadata,
            "n_clusters": n_clusters,
            "n_clusters_note": note or "as configured",
            "chosen_run": int(result.chosen_run),
            "chosen_seed": int(result.run_seeds[result.chosen_run]),
            "best_silhouette": rounded(result.silhouettes[result.chosen_run]),
            "silhouette_points": int(result.silhouette_points),
            "silhouette_per_run": dg.MetadataValue.json([rounded(s) for s in result.silhouettes]),
            "pca_explained_variance": rounded(result.explained_variance_ratio),
            "cluster_size_min": int(sizes.min()),
            "cluster_size_median": float(np.median(sizes)),
            "cluster_size_max": int(sizes.max()),
            plot_key("silhouette per k-means run"): image_markdown(
                plots.bar_chart(
                    [str(s) for s in result.run_seeds],
                    result.silhouettes,
                    "Silhouette per k-means run (chosen in red)",
                    "silhouette",
                    highlight=result.chosen_run,
                ),
                "silhouette per run",
            ),
            plot_key("cluster sizes"): image_markdown(
                plots.histogram(sizes, "Cluster size distribution", "artworks per cluster"), "cluster sizes"
            ),
            "seconds": rounded(time.perf_counter() - started),
        }
    )
