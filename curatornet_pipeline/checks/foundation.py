"""Checks on the ingested tables, embeddings, split and clusters."""

import dagster as dg
import numpy as np
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.storage import read_vectors


def no_offending_rows_check(name: str, asset: str, description: str, count_sql: str, count_label: str):
    """A blocking check that passes when ``count_sql`` counts nothing; the count is its metadata ``count_label``."""

    @dg.asset_check(name=name, pool="duckdb", asset=asset, blocking=True, description=description)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            found = int(con.execute(count_sql).fetchone()[0])
        return dg.AssetCheckResult(passed=found == 0, metadata={count_label: found})

    return _check


artwork_ids_unique = no_offending_rows_check(
    "artwork_ids_unique",
    "raw_artworks",
    "Every artwork id appears exactly once.",
    f"SELECT count(*) FROM (SELECT artwork_id FROM {tables.RAW_ARTWORKS} GROUP BY 1 HAVING count(*) > 1)",
    "duplicate_ids",
)

purchases_in_catalogue = no_offending_rows_check(
    "purchases_in_catalogue",
    "raw_transactions",
    "Every purchased artwork exists in the catalogue.",
    f"SELECT count(*) FROM {tables.RAW_TRANSACTIONS} t ANTI JOIN {tables.RAW_ARTWORKS} a USING (artwork_id)",
    "unknown_artwork_rows",
)


@dg.asset_check(
    pool="duckdb",
    asset="resnet50_embeddings",
    blocking=True,
    description="Every artwork has exactly one finite 2048-d embedding.",
)
def one_finite_embedding_per_artwork(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        missing = int(
            con.execute(
                f"SELECT count(*) FROM {tables.RAW_ARTWORKS} a "
                f"ANTI JOIN {tables.RESNET50_EMBEDDINGS} e USING (artwork_id)"
            ).fetchone()[0]
        )
        repeated = int(
            con.execute(
                f"SELECT count(*) FROM (SELECT artwork_id FROM {tables.RESNET50_EMBEDDINGS} "
                "GROUP BY 1 HAVING count(*) > 1)"
            ).fetchone()[0]
        )
        vectors = read_vectors(con, f"SELECT embedding FROM {tables.RESNET50_EMBEDDINGS}", "embedding")
    wrong_width = 0 if vectors.shape[1] == 2048 else len(vectors)
    non_finite = int((~np.isfinite(vectors)).any(axis=1).sum())
    return dg.AssetCheckResult(
        passed=missing == 0 and repeated == 0 and wrong_width == 0 and non_finite == 0,
        metadata={
            "artworks_without_embedding": missing,
            "artworks_with_several": repeated,
            "rows_not_2048_wide": wrong_width,
            "rows_with_nan_or_inf": non_finite,
        },
    )


@dg.asset_check(
    pool="duckdb",
    asset="last_basket_split",
    blocking=True,
    description="Every transaction is assigned exactly once: train, test, or excluded (an earlier purchase of a "
    "held-out item, kept but never trained on).",
)
def split_assigns_every_transaction_once(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        raw, labelled, bad_label, missing = con.execute(
            f"""
            SELECT (SELECT count(*) FROM {tables.RAW_TRANSACTIONS}),
                   (SELECT count(*) FROM {tables.LAST_BASKET_SPLIT}),
                   (SELECT count(*) FROM {tables.LAST_BASKET_SPLIT} WHERE split NOT IN ('train', 'test', 'excluded') OR split IS NULL),
                   (SELECT count(*) FROM {tables.RAW_TRANSACTIONS} r
                        ANTI JOIN {tables.LAST_BASKET_SPLIT} s USING (source_row, artwork_id))
            """
        ).fetchone()
    return dg.AssetCheckResult(
        passed=raw == labelled and bad_label == 0 and missing == 0,
        metadata={
            "raw_rows": int(raw),
            "split_rows": int(labelled),
            "bad_labels": int(bad_label),
            "unassigned": int(missing),
        },
    )


test_items_not_in_training = no_offending_rows_check(
    "test_items_not_in_training",
    "last_basket_split",
    "No item of a user's test basket appears in that user's training rows.",
    f"""
    SELECT count(*) FROM {tables.LAST_BASKET_SPLIT} t
    SEMI JOIN {tables.LAST_BASKET_SPLIT} r
      ON r.user_id = t.user_id AND r.artwork_id = t.artwork_id AND r.split = 'train'
    WHERE t.split = 'test'
    """,
    "test_items_also_in_training",
)

test_users_have_training_items = no_offending_rows_check(
    "test_users_have_training_items",
    "last_basket_split",
    "Every test user has at least one training item.",
    f"""
    SELECT count(DISTINCT user_id) FROM {tables.LAST_BASKET_SPLIT} t
    WHERE split = 'test' AND NOT EXISTS (
        SELECT 1 FROM {tables.LAST_BASKET_SPLIT} r WHERE r.user_id = t.user_id AND r.split = 'train')
    """,
    "test_users_without_training",
)


@dg.asset_check(
    pool="duckdb",
    asset="visual_clusters",
    blocking=True,
    description="Every artwork has one cluster, and exactly the configured k clusters are used.",
)
def clusters_cover_catalogue(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        uncovered, used, k, out_of_range = con.execute(
            f"""
            SELECT (SELECT count(*) FROM {tables.RAW_ARTWORKS} a ANTI JOIN {tables.VISUAL_CLUSTERS} c USING (artwork_idx)),
                   (SELECT count(DISTINCT cluster) FROM {tables.VISUAL_CLUSTERS}),
                   (SELECT max(n_clusters) FROM {tables.CLUSTERING_RUNS}),
                   (SELECT count(*) FROM {tables.VISUAL_CLUSTERS}
                      WHERE cluster < 0 OR cluster >= (SELECT max(n_clusters) FROM {tables.CLUSTERING_RUNS}))
            """
        ).fetchone()
    return dg.AssetCheckResult(
        passed=uncovered == 0 and used == k and out_of_range == 0,
        metadata={
            "artworks_without_cluster": int(uncovered),
            "clusters_used": int(used),
            "configured_k": int(k),
            "labels_out_of_range": int(out_of_range),
        },
    )


@dg.asset_check(
    pool="duckdb",
    asset="raw_transactions",
    blocking=True,
    description="One basket per user and purchase time: rows of one user with the same timestamp share one basket id.",
)
def one_basket_per_user_and_time(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        split_sessions, mixed_baskets = con.execute(
            f"""
            SELECT
              (SELECT count(*) FROM (SELECT 1 FROM {tables.RAW_TRANSACTIONS}
                 GROUP BY user_id, purchase_timestamp HAVING count(DISTINCT basket_id) > 1)),
              (SELECT count(*) FROM (SELECT 1 FROM {tables.RAW_TRANSACTIONS}
                 GROUP BY basket_id HAVING count(DISTINCT (user_id, purchase_timestamp)) > 1))
            """
        ).fetchone()
    return dg.AssetCheckResult(
        passed=split_sessions == 0 and mixed_baskets == 0,
        metadata={
            "user_times_in_several_baskets": int(split_sessions),
            "baskets_with_several_users_or_times": int(mixed_baskets),
        },
    )
