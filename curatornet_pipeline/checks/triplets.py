"""Checks on the sampled triplets: every sampling rule (paper section 3.2) on every row, and a clean deduplicated union."""

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.core.sampling import check_strategy_rules
from curatornet_pipeline.core.split import TEST, TRAIN
from curatornet_pipeline.readers import load_sampling_inputs, sampler_rows
from curatornet_pipeline.storage import read_frame, read_triplet_set


def _violations(duckdb: DuckDBResource, triplets_table: tables.Table, profiles_table: tables.Table) -> dict:
    """Violation counts per (strategy, split, rule), checked on the whole table, not a sample."""
    found: dict[str, int] = {}
    with duckdb.get_connection() as con:
        inputs = load_sampling_inputs(con)
        groups = read_frame(con, f"SELECT DISTINCT strategy, split FROM {triplets_table} ORDER BY ALL")
        for strategy, split in groups.itertuples(index=False):
            ts, _ = read_triplet_set(
                con,
                triplets_table,
                profiles_table,
                "strategy = ? AND split = ?",
                [strategy, split],
                "strategy = ?",
                [strategy],
            )
            for rule, count in check_strategy_rules(strategy, ts, inputs).items():
                found[f"{strategy}/{split}/{rule}"] = int(count)
    return found


def rules_check(
    name: str, asset: str, description: str, triplets_table: tables.Table, profiles_table: tables.Table
):
    """A blocking check that every stored triplet of ``asset`` obeys its strategy's rules."""

    @dg.asset_check(name=name, pool="duckdb", asset=asset, blocking=True, description=description)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        violations = _violations(duckdb, triplets_table, profiles_table)
        broken = {k: v for k, v in violations.items() if v}
        return dg.AssetCheckResult(
            passed=not broken,
            metadata={"rules_checked": len(violations), "violations": dg.MetadataValue.json(broken)},
        )

    return _check


triplets_follow_strategy_rules = rules_check(
    "triplets_follow_strategy_rules",
    "triplets",
    "Every materialized triplet of every strategy obeys its sampling rules (vectorized over all rows).",
    tables.TRIPLETS,
    tables.PROFILES,
)

random_triplets_follow_rules = rules_check(
    "random_triplets_follow_rules",
    "random_triplets",
    "The random-sampling triplets obey their rules on every row: CuratorNet's ablation has profile = P_u \\ i "
    "(the positive is NOT in the profile, the profile is the rest of the history) and a negative the user never "
    "bought; VBPR's random_bpr has the full history.",
    tables.RANDOM_TRIPLETS,
    tables.RANDOM_PROFILES,
)


@dg.asset_check(
    pool="duckdb",
    asset="training_triplets",
    blocking=True,
    description="No triplet hash occurs twice, and no validation triplet repeats a training triplet.",
)
def union_is_deduplicated(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        repeated, overlap = con.execute(
            f"""
            SELECT
              (SELECT count(*) FROM (SELECT triplet_hash FROM {tables.TRAINING_TRIPLETS} GROUP BY 1 HAVING count(*) > 1)),
              (SELECT count(*) FROM {tables.TRAINING_TRIPLETS} v
                 SEMI JOIN {tables.TRAINING_TRIPLETS} t ON t.triplet_hash = v.triplet_hash AND t.split = 'train'
                 WHERE v.split = 'validation')
            """
        ).fetchone()
    return dg.AssetCheckResult(
        passed=repeated == 0 and overlap == 0,
        metadata={"repeated_hashes": int(repeated), "validation_rows_in_train": int(overlap)},
    )


def _test_rows_in_sampler_inputs(duckdb: DuckDBResource) -> dict:
    """Rows the samplers read that are not training rows, and (user, artwork) history pairs that are test rows."""
    with duckdb.get_connection() as con:
        fed = sampler_rows(con)
        inputs = load_sampling_inputs(con)
        test = read_frame(
            con, f"SELECT DISTINCT user_id, artwork_idx FROM {tables.LAST_BASKET_SPLIT} WHERE split = ?", [TEST]
        )
    ix = inputs.index
    history = pd.DataFrame(
        {"user_id": np.asarray(inputs.user_ids, dtype=object)[ix.hist_user], "artwork_idx": ix.hist_items}
    )
    leaked = history.merge(test.astype({"artwork_idx": np.int64}), on=["user_id", "artwork_idx"])
    return {
        "rows_read": int(len(fed)),
        "non_training_rows_read": int((fed["split"] != TRAIN).sum()),
        "history_items_held_out": int(len(leaked)),
    }


def no_test_rows_check(name: str, asset: str):
    """A blocking check that the samplers behind ``asset`` read the training view only (no test label)."""

    @dg.asset_check(
        name=name,
        pool="duckdb",
        asset=asset,
        blocking=True,
        description="The sampler's inputs hold no test-split row: every row it reads is a training row, and no "
        "user's training history holds an item of their held-out basket (training never sees the test set).",
    )
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        found = _test_rows_in_sampler_inputs(duckdb)
        return dg.AssetCheckResult(
            passed=found["non_training_rows_read"] == 0 and found["history_items_held_out"] == 0, metadata=found
        )

    return _check


triplets_sampler_inputs_hold_no_test_rows = no_test_rows_check("sampler_inputs_hold_no_test_rows", "triplets")
random_triplets_sampler_inputs_hold_no_test_rows = no_test_rows_check(
    "random_sampler_inputs_hold_no_test_rows", "random_triplets"
)
