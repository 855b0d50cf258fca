"""Checks on the cold-start protocols: what the retrained models saw is what the protocol allows."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.storage import read_frame


@dg.asset_check(
    pool="duckdb",
    asset="new_customer_metrics",
    blocking=True,
    description="No new (held-out) customer is in the retrained models' training purchases or in any of their "
    "triplets, and every new customer was evaluated.",
)
def new_customers_absent_from_training(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    where = f"protocol = '{tables.NEW_CUSTOMERS}'"
    with duckdb.get_connection() as con:
        counts = read_frame(
            con,
            f"""
            WITH held AS (SELECT DISTINCT user_id FROM {tables.COLD_START_USERS} WHERE {where})
            SELECT
                (SELECT count(*) FROM held) AS new_customers,
                (SELECT count(*) FROM {tables.COLD_START_TRAINING_PURCHASES}
                 WHERE {where} AND user_id IN (SELECT user_id FROM held)) AS training_purchases_of_new_customers,
                (SELECT count(*) FROM {tables.COLD_START_TRIPLET_USERS}
                 WHERE {where} AND user_id IN (SELECT user_id FROM held)) AS new_customers_in_triplets,
                (SELECT count(*) FROM {tables.COLD_START_TRIPLET_USERS} WHERE {where}) AS customers_in_triplets,
                (SELECT min(n_users) FROM {tables.NEW_CUSTOMER_METRICS}) AS fewest_users_of_a_method
            """,
        ).iloc[0]
    metadata = {k: int(v) for k, v in counts.items() if v == v}
    passed = (
        counts["new_customers"] > 0
        and counts["training_purchases_of_new_customers"] == 0
        and counts["new_customers_in_triplets"] == 0
        and counts["customers_in_triplets"] > 0
        and counts["fewest_users_of_a_method"] == counts["new_customers"]
    )
    return dg.AssetCheckResult(passed=bool(passed), metadata=metadata)


@dg.asset_check(
    pool="duckdb",
    asset="new_artwork_metrics",
    blocking=True,
    description="The new-artwork models trained on exactly the purchases at or before the cut-off: none after it, "
    "none before it left out.",
)
def no_training_purchase_after_cutoff(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    where = f"protocol = '{tables.NEW_ARTWORKS}'"
    with duckdb.get_connection() as con:
        counts = read_frame(
            con,
            f"""
            WITH cut AS (SELECT cutoff FROM {tables.COLD_START_PROTOCOLS} WHERE {where})
            SELECT
                (SELECT count(*) FROM cut) AS protocol_rows,
                (SELECT count(*) FROM {tables.COLD_START_TRAINING_PURCHASES}
                 WHERE {where} AND purchase_timestamp > (SELECT cutoff FROM cut)) AS training_purchases_after_cutoff,
                (SELECT count(*) FROM {tables.COLD_START_TRAINING_PURCHASES} WHERE {where}) AS training_purchases,
                (SELECT count(*) FROM {tables.LAST_BASKET_SPLIT}
                 WHERE purchase_timestamp <= (SELECT cutoff FROM cut)) AS purchases_up_to_cutoff
            """,
        ).iloc[0]
    metadata = {k: int(v) for k, v in counts.items()}
    passed = (
        counts["protocol_rows"] == 1
        and counts["training_purchases_after_cutoff"] == 0
        and counts["training_purchases"] == counts["purchases_up_to_cutoff"] > 0
    )
    return dg.AssetCheckResult(passed=bool(passed), metadata=metadata)
