"""Split group: the held-out last basket of every user with two or more baskets (or the authors' test set)."""

from typing import Literal

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curatornet_pipeline import tables
from curatornet_pipeline.assets.metadata import rounded, table_metadata
from curatornet_pipeline.core.split import TEST_BASKETS_FILE, read_test_tuples, split_from_test_tuples, split_summary
from curatornet_pipeline.core.split import last_basket_split as split_last_basket
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline.storage import read_frame, replace_tables, require_table

GROUP = "split"


class SplitConfig(dg.Config):
    test_baskets: Literal["auto", "last_basket", "file"] = Field(
        default="auto",
        description="'last_basket' (each repeat buyer's latest basket), 'file' (exactly the baskets the source "
        f"folder's {TEST_BASKETS_FILE} lists: columns user_id, artwork_id, one row per held-out item) or 'auto' "
        "(the file when the folder has one).",
    )


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=["raw_transactions"],
    pool="duckdb",
    description=(
        "Every transaction labelled train or test: for each user with two or more baskets the last basket "
        "(latest purchase timestamp) is the test set; users with one basket are train-only. With the authors' "
        f"{TEST_BASKETS_FILE} in the source folder, exactly the baskets it lists are held out. Also stores the "
        "user index (users sorted by id) used by triplets and models."
    ),
)
def last_basket_split(
    context: dg.AssetExecutionContext, config: SplitConfig, gallery: GallerySource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    tuples_file = gallery.folder() / TEST_BASKETS_FILE
    use_file = config.test_baskets == "file" or (config.test_baskets == "auto" and tuples_file.is_file())
    with duckdb.get_connection() as con:
        require_table(con, tables.RAW_TRANSACTIONS)
        transactions = read_frame(con, f"SELECT * FROM {tables.RAW_TRANSACTIONS} ORDER BY source_row, artwork_idx")
    if use_file:
        labelled = split_from_test_tuples(transactions, read_test_tuples(tuples_file), str(tuples_file))
        rule = f"the baskets listed in {tuples_file}"
    else:
        labelled = split_last_basket(transactions)
        rule = "each repeat buyer's last basket"
    context.log.info(f"held out: {rule}")
    users = pd.DataFrame({"user_id": sorted(labelled["user_id"].unique())})
    users.insert(0, "user_idx", range(len(users)))
    summary = split_summary(labelled)
    context.log.info(f"split summary: {summary}")
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.LAST_BASKET_SPLIT: labelled, tables.USERS: users})
        metadata = table_metadata(con, tables.LAST_BASKET_SPLIT)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "test_set": rule,
            **{k: (rounded(v) if isinstance(v, float) else v) for k, v in summary.items()},
        }
    )
