"""Checks on online metrics: a new model version must not be clicked clearly less than the one before it."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.assets.metadata import rounded
from curatornet_pipeline.core.online import compare_newest
from curatornet_pipeline.storage import read_frame

# Enough impressions on both sides for the normal approximation and for a fall worth acting on; p below 1%.
MIN_IMPRESSIONS = 200
MAX_P_VALUE = 0.01


@dg.asset_check(
    pool="duckdb",
    asset="online_metrics",
    description=(
        "The newest model version's click-through is not clearly below the previous version's: a warning when a "
        f"one-sided two-proportion z-test gives p < {MAX_P_VALUE} with at least {MIN_IMPRESSIONS} impressions "
        "for each version (fewer, or one version only: passes, saying there is not enough to tell)."
    ),
)
def newest_model_click_through_holds(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        metrics = read_frame(con, f"SELECT * FROM {tables.ONLINE_METRICS}")
    comparison = compare_newest(metrics)
    if comparison is None:
        return dg.AssetCheckResult(
            passed=True, metadata={"verdict": "fewer than two model versions were shown: nothing to compare"}
        )
    enough = min(comparison.older_impressions, comparison.newer_impressions) >= MIN_IMPRESSIONS
    fell = enough and comparison.p_value < MAX_P_VALUE
    verdict = (
        "the newest version is clicked clearly less" if fell
        else "no clear fall" if enough
        else f"too few impressions to tell (fewer than {MIN_IMPRESSIONS} for a version)"
    )
    return dg.AssetCheckResult(
        passed=not fell,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "verdict": verdict,
            "older_version": comparison.older,
            "newer_version": comparison.newer,
            "older_click_through": rounded(comparison.older_rate),
            "newer_click_through": rounded(comparison.newer_rate),
            "older_impressions": comparison.older_impressions,
            "newer_impressions": comparison.newer_impressions,
            "z": rounded(comparison.z),
            "p_value": rounded(comparison.p_value),
        },
    )
