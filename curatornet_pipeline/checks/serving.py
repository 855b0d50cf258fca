"""Checks on what the gallery serves: nothing owned or sold, a full list for everyone, a faithful snapshot."""

import dagster as dg
import duckdb as duckdb_module
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.snapshot import SNAPSHOT_TABLES, snapshot_path


@dg.asset_check(
    pool="duckdb",
    asset="served_interactions",
    description=f"Every line of likes.csv became a like (a warning, never blocking: lines that could not be used "
    f"are set aside in {tables.SET_ASIDE_LIKES} with their reason, and the fast path goes on without them).",
)
def every_like_line_is_used(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        rows = con.execute(f"SELECT line, reason FROM {tables.SET_ASIDE_LIKES} ORDER BY line LIMIT 5").fetchall()
        count = con.execute(f"SELECT count(*) FROM {tables.SET_ASIDE_LIKES}").fetchone()[0]
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "lines_set_aside": int(count),
            "first_lines": dg.MetadataValue.json([{"line": int(line), "reason": reason} for line, reason in rows]),
        },
    )


@dg.asset_check(
    pool="duckdb",
    asset="user_recommendations",
    blocking=True,
    description="No served recommendation is an artwork its user bought or liked, or one that is not available.",
)
def recommendations_are_available_and_not_owned(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        owned = con.execute(
            f"SELECT count(*) FROM {tables.USER_RECOMMENDATIONS} r "
            f"JOIN {tables.SERVED_INTERACTIONS} i USING (user_id, artwork_id)"
        ).fetchone()[0]
        unavailable = con.execute(
            f"SELECT count(*) FROM {tables.USER_RECOMMENDATIONS} r "
            f"ANTI JOIN {tables.AVAILABLE_ARTWORKS} a USING (artwork_id)"
        ).fetchone()[0]
        similar_unavailable = con.execute(
            f"SELECT count(*) FROM {tables.SIMILAR_ARTWORKS} s "
            f"ANTI JOIN {tables.AVAILABLE_ARTWORKS} a ON s.similar_artwork_id = a.artwork_id"
        ).fetchone()[0]
    return dg.AssetCheckResult(
        passed=owned == 0 and unavailable == 0 and similar_unavailable == 0,
        metadata={
            "owned_or_liked_recommended": int(owned),
            "unavailable_recommended": int(unavailable),
            "unavailable_similar": int(similar_unavailable),
        },
    )


@dg.asset_check(
    pool="duckdb",
    asset="user_recommendations",
    blocking=True,
    description="Every customer and visitor has k recommendations, or every available artwork they do not own "
    "when fewer remain; ranks run 1..n without gaps.",
)
def every_user_has_a_full_list(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    k = int(
        context.instance.get_latest_materialization_event(dg.AssetKey("user_recommendations"))
        .asset_materialization.metadata["k"]
        .value
    )
    with duckdb.get_connection() as con:
        wrong = con.execute(
            f"""
            WITH owned_available AS (
                SELECT i.user_id, count(DISTINCT i.artwork_id) AS n FROM {tables.SERVED_INTERACTIONS} i
                SEMI JOIN {tables.AVAILABLE_ARTWORKS} a USING (artwork_id) GROUP BY i.user_id),
            users AS (SELECT DISTINCT user_id FROM {tables.SERVED_INTERACTIONS}),
            open_items AS (
                SELECT u.user_id, (SELECT count(*) FROM {tables.AVAILABLE_ARTWORKS}) - coalesce(o.n, 0) AS n_open
                FROM users u LEFT JOIN owned_available o USING (user_id)),
            served AS (SELECT user_id, count(*) AS n, max(rank) AS top_rank FROM {tables.USER_RECOMMENDATIONS}
                       GROUP BY user_id)
            SELECT u.user_id, coalesce(s.n, 0) AS n, least(?, coalesce(o.n_open, 0)) AS expected
            FROM users u LEFT JOIN served s USING (user_id) LEFT JOIN open_items o USING (user_id)
            WHERE coalesce(s.n, 0) != least(?, coalesce(o.n_open, 0)) OR coalesce(s.top_rank, 0) != coalesce(s.n, 0)
            """,
            [k, k],
        ).df()
        n_users = con.execute(f"SELECT count(DISTINCT user_id) FROM {tables.SERVED_INTERACTIONS}").fetchone()[0]
    return dg.AssetCheckResult(
        passed=wrong.empty,
        metadata={"k": k, "n_users": int(n_users), "users_with_wrong_counts": len(wrong),
                  "examples": dg.MetadataValue.json(wrong.head(5).astype(str).to_dict("records"))},
    )


@dg.asset_check(
    pool="duckdb",
    asset="serving_snapshot",
    blocking=True,
    description="The published snapshot holds exactly the served tables: same rows in every table.",
)
def snapshot_matches_tables(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    path = snapshot_path(duckdb.database)
    mismatched = {}
    with duckdb.get_connection() as con, duckdb_module.connect(str(path), read_only=True) as snap:
        for table, select in SNAPSHOT_TABLES.items():
            # Row count and an order-free fingerprint of every row's contents, on both sides.
            pipeline = con.execute(f"SELECT count(*), sum(hash(t)) FROM ({select}) t").fetchone()
            published = snap.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchone()
            if tuple(pipeline) != tuple(published):
                mismatched[table] = {"pipeline_rows": int(pipeline[0]), "snapshot_rows": int(published[0])}
    return dg.AssetCheckResult(
        passed=not mismatched, metadata={"path": str(path), "mismatched": dg.MetadataValue.json(mismatched)}
    )
