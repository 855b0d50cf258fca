"""Split group: the held-out last basket of every user with two or more baskets."""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.assets.metadata import rounded, table_metadata
from curatornet_pipeline.core.split import last_basket_split as split_last_basket
from curatornet_pipeline.core.split import split_summary
from curatornet_pipeline.storage import read_frame, replace_tables, require_table

GROUP = "split"


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=["raw_transactions"],
    pool="duckdb",
    description=(
        "Every transaction labelled train or test: for each user with two or more baskets the last basket "
        "(latest purchase timestamp) is the test set; users with one basket are train-only. Also stores the "
        "user index (users sorted by id) used by triplets and models."
    ),
)
def last_basket_split(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        require_table(con, tables.RAW_TRANSACTIONS)
        transactions = read_frame(con, f"SELECT * FROM {tables.RAW_TRANSACTIONS} ORDER BY source_row, artwork_idx")
    labelled = split_last_basket(transactions)
    users = pd.DataFrame({"user_id": sorted(labelled["user_id"].unique())})
    users.insert(0, "user_idx", range(len(users)))
    summary = split_summary(labelled)
    context.log.info(f"split summary: {summary}")
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.LAST_BASKET_SPLIT: labelled, tables.USERS: users})
        metadata = table_metadata(con, tables.LAST_BASKET_SPLIT)
    return dg.MaterializeResult(
        metadata={**metadata, **{k: (rounded(v) if isinstance(v, float) else v) for k, v in summary.items()}}
    )
