"""Ingest group: the source files, then the normalized artwork and transaction tables."""

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.assets.metadata import frame_markdown, table_key, table_metadata
from curatornet_pipeline.configs import ClusteringConfig, EmbeddingConfig
from curatornet_pipeline.core.fingerprint import source_fingerprint
from curatornet_pipeline.core.ingest import detect_source_format, read_source
from curatornet_pipeline.core.preflight import RunPlan, embedding_source, preflight_source
from curatornet_pipeline.core.reporting import markdown_table
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline.storage import read_frame, replace_tables, table_exists

GROUP = "ingest"
def _op_config(context: dg.AssetExecutionContext, op: str, config_class: type[dg.Config]) -> dg.Config:
    """The run config of another step of this run, with that step's defaults filled in."""
    ops = (context.run.run_config or {}).get("ops", {})
    return config_class(**(ops.get(op, {}) or {}).get("config", {}))


def run_plan(context: dg.AssetExecutionContext, folder: Path, duckdb: DuckDBResource) -> RunPlan:
    """What this run will compute (its asset selection) with the settings that bound the data it needs."""
    # The run's asset selection; empty when the whole job runs, whose assets the job definition lists.
    planned = context.run.asset_selection or context.job_def.asset_layer.selected_asset_keys

    def runs(key: str) -> bool:
        return dg.AssetKey(key) in planned

    clustering = _op_config(context, "visual_clusters", ClusteringConfig)
    embedding = _op_config(context, "resnet50_embeddings", EmbeddingConfig)
    embedded_image_keys = None
    if runs("serving_embeddings") and not runs("resnet50_embeddings"):
        if embedding_source(folder, embedding.source) == "images":
            embedded_image_keys = _embedded_image_keys(duckdb)
    return RunPlan(
        cluster=runs("visual_clusters"),
        n_clusters=clustering.n_clusters,
        pca_components=clustering.pca_components,
        embeddings=embedding_source(folder, embedding.source) if runs("resnet50_embeddings") else None,
        weights=embedding.weights,
        evaluate=runs("per_user_metrics"),
        embedded_image_keys=embedded_image_keys,
    )


def _embedded_image_keys(duckdb: DuckDBResource) -> frozenset[str]:
    """Content hashes of every image embedded so far (training catalogue and serving refreshes)."""
    keys: set[str] = set()
    with duckdb.get_connection() as con:
        for table in (tables.RESNET50_EMBEDDINGS, tables.SERVING_ARTWORK_EMBEDDINGS):
            if table_exists(con, table):
                keys.update(read_frame(con, f"SELECT DISTINCT content_key FROM {table}")["content_key"])
    return frozenset(keys)


def _combined_fingerprint(prints: dict[str, str]) -> str:
    return hashlib.sha1("\n".join(f"{k}={v}" for k, v in sorted(prints.items())).encode()).hexdigest()


@dg.asset(
    group_name=GROUP,
    kinds={"python", "file"},
    pool="duckdb",
    description=(
        "The input files. With CURATORNET_SOURCE=demo (default) this generates the seeded synthetic gallery "
        "(UGallery-format CSVs + one PNG per artwork); otherwise it records the user's folder. Metadata holds "
        "a fingerprint of every file so changes are visible."
    ),
)
def source_files(
    context: dg.AssetExecutionContext, gallery: GallerySource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    metadata: dict = {}
    if gallery.is_demo:
        stats = gallery.ensure_demo_gallery(context.log)
    folder = gallery.folder()
    # The whole source is checked against what this run will compute before any table is written, so a
    # source that cannot work leaves every table as the previous run left it.
    artworks, transactions = read_source(folder)
    notes = preflight_source(folder, artworks, transactions, run_plan(context, folder, duckdb))
    for note in notes:
        context.log.info(note)
    metadata["preflight"] = dg.MetadataValue.json(
        {"artworks": len(artworks), "transactions": len(transactions), "notes": notes}
    )
    if gallery.is_demo:
        comparison = pd.DataFrame(stats["comparison"])
        context.log.info("demo gallery statistics (generated vs the paper's UGallery):\n" + markdown_table(comparison))
        with duckdb.get_connection() as con:
            replace_tables(con, {tables.DEMO_GALLERY_STATS: comparison.astype({"generated": float, "paper": float})})
        metadata[table_key("generated vs paper")] = frame_markdown(comparison)
        metadata["note"] = (
            "Synthetic demo gallery: its statistics mimic the paper's dataset, its results are not the paper's."
        )
    metadata["folder"] = dg.MetadataValue.path(str(folder))
    metadata["format"] = detect_source_format(folder)
    metadata["fingerprints"] = dg.MetadataValue.json(source_fingerprint(folder))
    return dg.MaterializeResult(metadata=metadata)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_artworks",
            group_name=GROUP,
            kinds={"duckdb", "pandas"},
            deps=["source_files"],
            description="One row per artwork with its canonical index (artworks sorted by id), artist and upload time.",
        ),
        dg.AssetSpec(
            "raw_transactions",
            group_name=GROUP,
            kinds={"duckdb", "pandas"},
            deps=["source_files"],
            description="One row per purchased artwork: user, basket id, purchase timestamp, artwork id and index.",
        ),
    ],
    pool="duckdb",
)
def raw_tables(context: dg.AssetExecutionContext, gallery: GallerySource, duckdb: DuckDBResource):
    folder = gallery.folder()
    context.log.info(f"reading {detect_source_format(folder)} files from {folder}")
    artworks, transactions = read_source(folder)
    with duckdb.get_connection() as con:
        replace_tables(
            con,
            {tables.RAW_ARTWORKS: artworks, tables.RAW_TRANSACTIONS: transactions},
            external_inputs={str(folder): _combined_fingerprint(source_fingerprint(folder))},
        )
        artwork_meta = table_metadata(con, tables.RAW_ARTWORKS)
        transaction_meta = table_metadata(con, tables.RAW_TRANSACTIONS)
    yield dg.MaterializeResult(
        asset_key="raw_artworks",
        metadata={
            **artwork_meta,
            "n_artists": int(artworks["artist_id"].nunique()),
            "has_upload_times": bool(artworks["upload_timestamp"].notna().any()),
        },
    )
    yield dg.MaterializeResult(
        asset_key="raw_transactions",
        metadata={
            **transaction_meta,
            "n_users": int(transactions["user_id"].nunique()),
            "n_baskets": int(transactions["basket_id"].nunique()),
            "n_purchased_artworks": int(transactions["artwork_id"].nunique()),
        },
    )
