"""Every DuckDB table of the pipeline, declared once: its name, the asset that writes it, its columns.

This module is the only place a qualified table name is spelled. Assets, checks, the CLI, the serving
readers and the lineage map refer to tables through the objects below (``f"SELECT ... FROM {RAW_ARTWORKS}"``),
so renaming a table or adding a column is one edit here. ``storage.replace_tables`` writes a registered
table with the casts declared here and refuses a frame whose columns differ from the declaration; the
assets' Dagster column schema is built from the same declaration (``assets.metadata.table_metadata``); and
``lineage`` derives which tables each table is computed from out of ``inputs`` / ``partition_inputs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# A fixed-size float vector whose width the written data sets (PCA or model dimensions): FLOAT[width].
VECTOR = "FLOAT[n]"
# ResNet50's penultimate layer; the embeddings module refuses any other width before a row is written.
EMBEDDING = "FLOAT[2048]"

# Model variants: the partitions of the model tables (which triplets a model trained on).
SIX_STRATEGIES = "six_strategies"
STRATEGIES_3_AND_4 = "strategies_3_and_4"
RANDOM_SAMPLING = "random_sampling"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the DuckDB type as stored (VECTOR: a FLOAT array of the written width)
    # Written with CAST(... AS type): pandas cannot express it (BLOB, JSON, fixed-size arrays, all-null text).
    cast: bool = False
    description: str = ""


def _columns(spec: str, casts: tuple[str, ...] = ()) -> tuple[Column, ...]:
    """Columns from "name TYPE, name TYPE, ..." (the form DuckDB's DESCRIBE prints); ``casts`` are cast on write."""
    columns = []
    for part in spec.split(","):
        name, sql_type = part.split()
        columns.append(Column(name, sql_type, cast=name in casts))
    return tuple(columns)


@dataclass(frozen=True, eq=False)  # identity equality: tables key dicts of frames
class Table:
    name: str  # schema.table
    asset: str | None  # the asset that writes it (None: bookkeeping written by the storage layer itself)
    columns: tuple[Column, ...]
    partition_column: str | None = None
    # partition -> the asset writing that partition, where it is not ``asset`` (two assets share a table).
    partition_assets: Mapping[str, str] = field(default_factory=dict)
    # The tables this table is computed from (what its asset reads); per partition where they differ.
    inputs: tuple[Table, ...] = ()
    partition_inputs: Mapping[str, tuple[Table, ...]] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".")[1]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def asset_of(self, partition: str | None = None) -> str | None:
        return self.partition_assets.get(partition, self.asset) if partition else self.asset

    def casts(self, vector_width: int | None = None) -> dict[str, str]:
        """column -> SQL type of the columns written with a cast; VECTOR columns need ``vector_width``."""
        casts = {}
        for column in self.columns:
            if not column.cast:
                continue
            if column.type == VECTOR:
                if vector_width is None:
                    raise ValueError(f"{self.name}.{column.name}: the vector width is unknown for an empty frame")
                casts[column.name] = f"FLOAT[{int(vector_width)}]"
            else:
                casts[column.name] = column.type
        return casts


# ------------------------------------------------------------------------------------------------ ingest

DEMO_GALLERY_STATS = Table(
    "ingest.demo_gallery_stats", "source_files", _columns("statistic VARCHAR, generated DOUBLE, paper DOUBLE")
)
RAW_ARTWORKS = Table(
    "ingest.raw_artworks",
    "raw_artworks",
    _columns(
        "artwork_idx BIGINT, artwork_id VARCHAR, artist_id VARCHAR, upload_timestamp TIMESTAMP_NS, source_row BIGINT"
    ),
)
RAW_TRANSACTIONS = Table(
    "ingest.raw_transactions",
    "raw_transactions",
    _columns(
        "user_id VARCHAR, basket_id BIGINT, purchase_timestamp TIMESTAMP_NS, artwork_id VARCHAR, artwork_idx BIGINT, "
        "source_row BIGINT"
    ),
)

# ---------------------------------------------------------------------------------------------- features

RESNET50_EMBEDDINGS = Table(
    "features.resnet50_embeddings",
    "resnet50_embeddings",
    _columns(
        f"artwork_idx BIGINT, artwork_id VARCHAR, content_key VARCHAR, embedder VARCHAR, embedding {EMBEDDING}",
        casts=("embedding",),
    ),
    inputs=(RAW_ARTWORKS,),
)
VISUAL_CLUSTERS = Table(
    "features.visual_clusters",
    "visual_clusters",
    _columns(f"artwork_idx BIGINT, artwork_id VARCHAR, cluster INTEGER, pca {VECTOR}", casts=("pca",)),
    inputs=(RESNET50_EMBEDDINGS,),
)
CLUSTERING_RUNS = Table(
    "features.clustering_runs",
    "visual_clusters",
    _columns("run BIGINT, seed BIGINT, silhouette DOUBLE, chosen BOOLEAN, n_clusters BIGINT"),
    inputs=(RESNET50_EMBEDDINGS,),
)

# ------------------------------------------------------------------------------------------------- split

LAST_BASKET_SPLIT = Table(
    "split.last_basket_split",
    "last_basket_split",
    _columns(
        "user_id VARCHAR, basket_id BIGINT, purchase_timestamp TIMESTAMP_NS, artwork_id VARCHAR, artwork_idx BIGINT, "
        "source_row BIGINT, split VARCHAR"
    ),
    inputs=(RAW_TRANSACTIONS,),
)
USERS = Table(
    "split.users", "last_basket_split", _columns("user_idx BIGINT, user_id VARCHAR"), inputs=(RAW_TRANSACTIONS,)
)

# ---------------------------------------------------------------------------------------------- triplets

_SAMPLING_INPUTS = (RAW_ARTWORKS, LAST_BASKET_SPLIT, USERS, VISUAL_CLUSTERS)
_TRIPLET_COLUMNS = "profile_id INTEGER, positive INTEGER, negative INTEGER, user_idx INTEGER, triplet_hash BIGINT"
_PROFILE_COLUMNS = "profile_id INTEGER, items INTEGER[]"

TRIPLETS = Table(
    "triplets.triplets",
    "triplets",
    _columns(f"strategy VARCHAR, split VARCHAR, {_TRIPLET_COLUMNS}"),
    partition_column="strategy",
    inputs=_SAMPLING_INPUTS,
)
PROFILES = Table(
    "triplets.profiles",
    "triplets",
    _columns(f"strategy VARCHAR, {_PROFILE_COLUMNS}", casts=("items",)),
    partition_column="strategy",
    inputs=_SAMPLING_INPUTS,
)
RANDOM_TRIPLETS = Table(
    "triplets.random_triplets",
    "random_triplets",
    _columns(f"strategy VARCHAR, split VARCHAR, {_TRIPLET_COLUMNS}"),
    inputs=_SAMPLING_INPUTS,
)
RANDOM_PROFILES = Table(
    "triplets.random_profiles",
    "random_triplets",
    _columns(f"strategy VARCHAR, {_PROFILE_COLUMNS}", casts=("items",)),
    inputs=_SAMPLING_INPUTS,
)
TRAINING_TRIPLETS = Table(
    "triplets.training_triplets",
    "training_triplets",
    _columns(f"split VARCHAR, strategy VARCHAR, {_TRIPLET_COLUMNS}"),
    inputs=(TRIPLETS, PROFILES),
)
TRAINING_PROFILES = Table(
    "triplets.training_profiles",
    "training_triplets",
    _columns(_PROFILE_COLUMNS, casts=("items",)),
    inputs=(TRIPLETS, PROFILES),
)

# ------------------------------------------------------------------------------------------------- model

_SIX_STRATEGY_MODEL_INPUTS = (TRAINING_TRIPLETS, TRAINING_PROFILES, RESNET50_EMBEDDINGS)
_RANDOM_MODEL_INPUTS = (RANDOM_TRIPLETS, RANDOM_PROFILES, RESNET50_EMBEDDINGS)
_ANY_MODEL_INPUTS = _SIX_STRATEGY_MODEL_INPUTS + _RANDOM_MODEL_INPUTS[:2]
_MODEL_ROW = (
    "model_id VARCHAR, variant VARCHAR, run_id VARCHAR, l2_lambda DOUBLE, trained_at TIMESTAMP_NS, best_epoch BIGINT, "
    "validation_accuracy DOUBLE, device VARCHAR, training_seconds DOUBLE, n_train_triplets BIGINT, "
    "n_validation_triplets BIGINT"
)
_MODEL_BLOBS = "config JSON, lineage JSON, weights BLOB"
_HISTORY = "epoch BIGINT, learning_rate DOUBLE, train_loss DOUBLE, validation_accuracy DOUBLE, seconds DOUBLE"
_CURATORNET_PARTITIONS = {
    "partition_column": "variant",
    "partition_assets": MappingProxyType({RANDOM_SAMPLING: "curatornet_random_sampling_model"}),
    "inputs": _ANY_MODEL_INPUTS,
    "partition_inputs": MappingProxyType(
        {SIX_STRATEGIES: _SIX_STRATEGY_MODEL_INPUTS, RANDOM_SAMPLING: _RANDOM_MODEL_INPUTS}
    ),
}
_VBPR_PARTITIONS = {
    "partition_column": "variant",
    "partition_assets": MappingProxyType({RANDOM_SAMPLING: "vbpr_random_sampling_model"}),
    "inputs": _ANY_MODEL_INPUTS + (USERS,),
    "partition_inputs": MappingProxyType(
        {
            STRATEGIES_3_AND_4: _SIX_STRATEGY_MODEL_INPUTS + (USERS,),
            RANDOM_SAMPLING: _RANDOM_MODEL_INPUTS + (USERS,),
        }
    ),
}

CURATORNET_MODELS = Table(
    "model.curatornet_models",
    "curatornet_model",
    _columns(f"{_MODEL_ROW}, {_MODEL_BLOBS}", casts=("config", "lineage", "weights")),
    **_CURATORNET_PARTITIONS,
)
TRAINING_HISTORY = Table(
    "model.training_history",
    "curatornet_model",
    _columns(f"{_HISTORY}, triplets_per_second DOUBLE, model_id VARCHAR, variant VARCHAR"),
    **_CURATORNET_PARTITIONS,
)
VBPR_MODELS = Table(
    "model.vbpr_models",
    "vbpr_model",
    _columns(f"{_MODEL_ROW}, skipped_one_item_triplets BIGINT, {_MODEL_BLOBS}", casts=("config", "lineage", "weights")),
    **_VBPR_PARTITIONS,
)
VBPR_TRAINING_HISTORY = Table(
    "model.vbpr_training_history",
    "vbpr_model",
    _columns(f"{_HISTORY}, model_id VARCHAR, variant VARCHAR"),
    **_VBPR_PARTITIONS,
)
_VECTOR_INPUTS = (CURATORNET_MODELS, RESNET50_EMBEDDINGS, RAW_ARTWORKS, LAST_BASKET_SPLIT)
ITEM_EMBEDDINGS = Table(
    "model.item_embeddings",
    "item_embeddings",
    _columns(
        f"model_id VARCHAR, model_run_id VARCHAR, artwork_idx BIGINT, artwork_id VARCHAR, vector {VECTOR}",
        casts=("vector",),
    ),
    inputs=_VECTOR_INPUTS,
)
USER_VECTORS = Table(
    "model.user_vectors",
    "user_vectors",
    _columns(f"model_id VARCHAR, model_run_id VARCHAR, user_id VARCHAR, vector {VECTOR}", casts=("vector",)),
    inputs=_VECTOR_INPUTS,
)

# -------------------------------------------------------------------------------------------- evaluation

_EVALUATION_INPUTS = (
    RAW_ARTWORKS,
    LAST_BASKET_SPLIT,
    USERS,
    RESNET50_EMBEDDINGS,
    CURATORNET_MODELS,
    ITEM_EMBEDDINGS,
    USER_VECTORS,
    VBPR_MODELS,
)
_METRICS = (
    "auc DOUBLE, precision_at_20 DOUBLE, recall_at_20 DOUBLE, ndcg_at_20 DOUBLE, precision_at_100 DOUBLE, "
    "recall_at_100 DOUBLE, ndcg_at_100 DOUBLE, ndcg_authors_at_20 DOUBLE, ndcg_authors_at_100 DOUBLE"
)
RECOMMENDATIONS = Table(
    "evaluation.recommendations",
    "recommendations",
    _columns(
        "method VARCHAR, user_id VARCHAR, rank BIGINT, artwork_id VARCHAR, artwork_idx BIGINT, score DOUBLE, "
        "is_hit BOOLEAN"
    ),
    inputs=_EVALUATION_INPUTS,
)
PER_USER_METRICS = Table(
    "evaluation.per_user_metrics",
    "per_user_metrics",
    _columns(f"method VARCHAR, user_id VARCHAR, {_METRICS}, n_candidates BIGINT, n_relevant BIGINT, protocol VARCHAR"),
    inputs=_EVALUATION_INPUTS,
)
METRIC_TABLE = Table(
    "evaluation.metric_table",
    "metric_table",
    _columns(
        "method VARCHAR, auc DOUBLE, recall_at_20 DOUBLE, precision_at_20 DOUBLE, ndcg_at_20 DOUBLE, "
        "recall_at_100 DOUBLE, precision_at_100 DOUBLE, ndcg_at_100 DOUBLE, ndcg_authors_at_20 DOUBLE, "
        "ndcg_authors_at_100 DOUBLE, n_users BIGINT, artist_diversity_at_20 DOUBLE, catalogue_coverage_at_20 DOUBLE"
    ),
    inputs=(PER_USER_METRICS, RECOMMENDATIONS, RAW_ARTWORKS),
)
SIGNIFICANCE_TESTS = Table(
    "evaluation.significance_tests",
    "metric_table",
    _columns(
        "method_a VARCHAR, method_b VARCHAR, mean_diff DOUBLE, t DOUBLE, p_value DOUBLE, n_users BIGINT, metric VARCHAR"
    ),
    inputs=(PER_USER_METRICS,),
)
FIGURE_3 = Table(
    "evaluation.figure_3",
    "figure_3",
    _columns(
        "model VARCHAR, guided_method VARCHAR, random_method VARCHAR, guided_auc DOUBLE, random_auc DOUBLE, "
        "auc_difference DOUBLE, t DOUBLE, p_value DOUBLE, n_users BIGINT, paper_guided_auc DOUBLE, "
        "paper_random_auc DOUBLE, paper_p_value DOUBLE"
    ),
    inputs=(PER_USER_METRICS,),
)

# -------------------------------------------------------------------------------------------- cold start
# Two protocols (core.cold_start) share these tables, one partition each; the new-artwork partition is
# written by new_artwork_metrics. Each protocol retrains CuratorNet and VBPR on its own training view.

NEW_CUSTOMERS = "new_customers"
NEW_ARTWORKS = "new_artworks"
_COLD_START_INPUTS = (RAW_ARTWORKS, LAST_BASKET_SPLIT, VISUAL_CLUSTERS, RESNET50_EMBEDDINGS)
_COLD_START_PARTITIONS = {
    "partition_column": "protocol",
    "partition_assets": MappingProxyType({NEW_ARTWORKS: "new_artwork_metrics"}),
    "inputs": _COLD_START_INPUTS,
}
_COLD_START_METRICS = (
    "protocol VARCHAR, method VARCHAR, auc DOUBLE, recall_at_20 DOUBLE, precision_at_20 DOUBLE, ndcg_at_20 DOUBLE, "
    "recall_at_100 DOUBLE, precision_at_100 DOUBLE, ndcg_at_100 DOUBLE, n_users BIGINT, auc_diff_vs_curatornet DOUBLE, "
    "auc_p_value_vs_curatornet DOUBLE, ndcg_at_20_diff_vs_curatornet DOUBLE, ndcg_at_20_p_value_vs_curatornet DOUBLE, "
    "recall_at_20_diff_vs_curatornet DOUBLE, recall_at_20_p_value_vs_curatornet DOUBLE, serving_step VARCHAR, "
    "serving_seconds DOUBLE, training_seconds DOUBLE, scoring_seconds DOUBLE"
)

COLD_START_PROTOCOLS = Table(
    "evaluation.cold_start_protocols",
    "new_customer_metrics",
    _columns(
        "protocol VARCHAR, held_out_fraction DOUBLE, cutoff_quantile DOUBLE, cutoff TIMESTAMP_NS, seed BIGINT, "
        "n_users BIGINT, n_training_purchases BIGINT, n_training_users BIGINT, n_known_artworks BIGINT, "
        "n_target_artworks BIGINT, n_target_artworks_new BIGINT, fraction_target_purchases_new DOUBLE, "
        "n_train_triplets BIGINT, n_validation_triplets BIGINT, curatornet_validation_accuracy DOUBLE, "
        "vbpr_validation_accuracy DOUBLE, fold_in_steps BIGINT, fold_in_loss_before DOUBLE, fold_in_loss_after DOUBLE"
    ),
    **_COLD_START_PARTITIONS,
)
COLD_START_USERS = Table(
    "evaluation.cold_start_users",
    "new_customer_metrics",
    _columns(
        "protocol VARCHAR, user_id VARCHAR, n_profile_items BIGINT, n_candidates BIGINT, n_relevant BIGINT, "
        "n_relevant_new BIGINT"
    ),
    **_COLD_START_PARTITIONS,
)
COLD_START_TRAINING_PURCHASES = Table(
    "evaluation.cold_start_training_purchases",
    "new_customer_metrics",
    _columns(
        "protocol VARCHAR, user_id VARCHAR, basket_id BIGINT, purchase_timestamp TIMESTAMP_NS, artwork_idx BIGINT, "
        "source_row BIGINT, split VARCHAR"
    ),
    **_COLD_START_PARTITIONS,
)
COLD_START_TRIPLET_USERS = Table(
    "evaluation.cold_start_triplet_users",
    "new_customer_metrics",
    _columns("protocol VARCHAR, user_id VARCHAR, n_train_triplets BIGINT, n_validation_triplets BIGINT"),
    **_COLD_START_PARTITIONS,
)
COLD_START_PER_USER_METRICS = Table(
    "evaluation.cold_start_per_user_metrics",
    "new_customer_metrics",
    _columns(f"protocol VARCHAR, method VARCHAR, user_id VARCHAR, {_METRICS}, n_candidates BIGINT, n_relevant BIGINT"),
    **_COLD_START_PARTITIONS,
)
NEW_CUSTOMER_METRICS = Table(
    "evaluation.new_customer_metrics",
    "new_customer_metrics",
    _columns(_COLD_START_METRICS),
    partition_column="protocol",
    inputs=_COLD_START_INPUTS,
)
NEW_ARTWORK_METRICS = Table(
    "evaluation.new_artwork_metrics",
    "new_artwork_metrics",
    _columns(_COLD_START_METRICS),
    partition_column="protocol",
    inputs=_COLD_START_INPUTS,
)

# ----------------------------------------------------------------------------------------------- serving
# The fast path rewrites only these, from the source files (the first three) and the stored model.

_CATALOGUE_COLUMNS = (
    "artwork_idx BIGINT, artwork_id VARCHAR, artist_id VARCHAR, upload_timestamp TIMESTAMP_NS, n_purchases BIGINT, "
    "kind VARCHAR"
)
# What the storefront shows (core/catalogue.py); all optional, so every one is cast (an all-empty column has no type).
_SHOP_COLUMNS = (
    "image_file VARCHAR, display_file VARCHAR, title VARCHAR, artist_name VARCHAR, year INTEGER, medium VARCHAR, "
    "size VARCHAR, price DOUBLE, currency VARCHAR, shop_url VARCHAR"
)
_SHOP_CASTS = (
    "image_file", "display_file", "title", "artist_name", "year", "medium", "size", "price", "currency", "shop_url"
)
SERVING_CATALOGUE = Table(
    "serving.catalogue",
    "available_artworks",
    _columns(f"{_CATALOGUE_COLUMNS}, available BOOLEAN, availability_rule VARCHAR, {_SHOP_COLUMNS}", casts=_SHOP_CASTS),
)
AVAILABLE_ARTWORKS = Table(
    "serving.available_artworks",
    "available_artworks",
    _columns(f"{_CATALOGUE_COLUMNS}, availability_rule VARCHAR, {_SHOP_COLUMNS}", casts=_SHOP_CASTS),
)
SERVED_INTERACTIONS = Table(
    "serving.interactions",
    "served_interactions",
    _columns("user_id VARCHAR, artwork_id VARCHAR, artwork_idx BIGINT, timestamp TIMESTAMP_NS, kind VARCHAR"),
)
# Lines of the visitor app's likes.csv that could not be used (hand edits): kept with the reason, never dropped.
SET_ASIDE_LIKES = Table(
    "serving.set_aside_likes",
    "served_interactions",
    _columns("file VARCHAR, line BIGINT, reason VARCHAR, text VARCHAR", casts=("file", "reason", "text")),
)
SERVING_ARTWORK_EMBEDDINGS = Table(
    "serving.artwork_embeddings",
    "serving_embeddings",
    _columns(
        f"artwork_id VARCHAR, content_key VARCHAR, embedder VARCHAR, embedding {EMBEDDING}", casts=("embedding",)
    ),
    inputs=(SERVING_CATALOGUE, RESNET50_EMBEDDINGS),
)
_SERVING_VECTOR_INPUTS = (SERVING_ARTWORK_EMBEDDINGS, CURATORNET_MODELS, RESNET50_EMBEDDINGS)
SERVING_ITEM_VECTORS = Table(
    "serving.item_vectors",
    "serving_item_vectors",
    _columns(
        f"artwork_id VARCHAR, content_key VARCHAR, model_id VARCHAR, model_run_id VARCHAR, vector {VECTOR}",
        casts=("vector",),
    ),
    inputs=_SERVING_VECTOR_INPUTS,
)
SERVING_MODEL = Table(
    "serving.model",
    "serving_item_vectors",
    _columns(
        "model_id VARCHAR, run_id VARCHAR, l2_lambda DOUBLE, validation_accuracy DOUBLE, weights BLOB",
        casts=("weights",),
    ),
    inputs=_SERVING_VECTOR_INPUTS,
)
_SERVED_LIST_INPUTS = (SERVING_ITEM_VECTORS, SERVED_INTERACTIONS, AVAILABLE_ARTWORKS)
SERVING_USER_VECTORS = Table(
    "serving.user_vectors",
    "serving_user_vectors",
    _columns(f"user_id VARCHAR, model_id VARCHAR, vector {VECTOR}", casts=("vector",)),
    inputs=_SERVED_LIST_INPUTS,
)
USER_RECOMMENDATIONS = Table(
    "serving.user_recommendations",
    "user_recommendations",
    _columns("user_id VARCHAR, rank INTEGER, artwork_id VARCHAR, score FLOAT, model_id VARCHAR"),
    inputs=_SERVED_LIST_INPUTS,
)
SIMILAR_ARTWORKS = Table(
    "serving.similar_artworks",
    "similar_artworks",
    _columns("artwork_id VARCHAR, rank INTEGER, similar_artwork_id VARCHAR, score FLOAT, model_id VARCHAR"),
    inputs=(SERVING_ITEM_VECTORS, AVAILABLE_ARTWORKS),
)

# ------------------------------------------------------------------------------------------------ online

# Click-through and conversion of recommended works per model version and list position (core/online.py), from
# the app's impressions.csv and the shop's events.csv: files, not tables, so it has no table inputs.
ONLINE_METRICS = Table(
    "online.metrics",
    "online_metrics",
    _columns(
        "model_version VARCHAR, position BIGINT, impressions BIGINT, clicks BIGINT, click_through DOUBLE, "
        "conversions BIGINT, conversion_rate DOUBLE, first_view TIMESTAMP_NS, last_view TIMESTAMP_NS",
        casts=("model_version", "first_view", "last_view"),
    ),
)

# -------------------------------------------------------------------------------------------------- meta

TABLE_LINEAGE = Table(
    "meta.table_lineage",
    None,
    _columns(
        "table_name VARCHAR, partition_key VARCHAR, run_id VARCHAR, written_at TIMESTAMP, row_count BIGINT, "
        "fingerprint VARCHAR, inputs JSON"
    ),
)

ALL_TABLES: tuple[Table, ...] = tuple(value for value in list(globals().values()) if isinstance(value, Table))
BY_NAME: Mapping[str, Table] = MappingProxyType({table.name: table for table in ALL_TABLES})
