"""Checks on the metric tables: sanity bounds that a broken evaluation could not pass."""

import dagster as dg
import numpy as np
from dagster_duckdb import DuckDBResource
from scipy import stats

from curatornet_pipeline import tables
from curatornet_pipeline.core.evaluation import TABLE_2_COLUMNS
from curatornet_pipeline.storage import read_frame

METRICS = TABLE_2_COLUMNS


def _per_user(duckdb: DuckDBResource):
    with duckdb.get_connection() as con:
        return read_frame(con, f"SELECT * FROM {tables.PER_USER_METRICS}")


@dg.asset_check(
    pool="duckdb", asset="per_user_metrics", blocking=True, description="Oracle scores 1.0 on AUC, recall and nDCG."
)
def oracle_is_perfect(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    oracle = _per_user(duckdb).query("method == 'Oracle'")
    columns = ["auc", "recall_at_20", "ndcg_at_20", "recall_at_100", "ndcg_at_100"]
    # Users whose basket exceeds k cannot reach recall 1 at that k; the paper's baskets are ~1.3 items.
    worst = {c: float(oracle[c].min()) for c in columns}
    imperfect_users = int((oracle[["auc", "ndcg_at_20", "ndcg_at_100"]] < 1 - 1e-9).any(axis=1).sum())
    return dg.AssetCheckResult(
        passed=len(oracle) > 0 and imperfect_users == 0, metadata={**worst, "imperfect_users": imperfect_users}
    )


@dg.asset_check(
    pool="duckdb", asset="per_user_metrics", blocking=True, description="Every metric of every row lies in [0, 1]."
)
def metrics_in_unit_interval(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    per_user = _per_user(duckdb)
    values = per_user[[c for c in per_user.columns if c in METRICS or c.startswith("ndcg_")]]
    outside = int(((values < 0) | (values > 1)).sum().sum())
    return dg.AssetCheckResult(passed=outside == 0, metadata={"values_outside_0_1": outside})


@dg.asset_check(
    pool="duckdb",
    asset="per_user_metrics",
    blocking=True,
    description="Random's mean AUC lies within 4 standard errors of 0.5 (its expected noise band).",
)
def random_auc_near_half(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    auc = _per_user(duckdb).query("method == 'Random'")["auc"].dropna().to_numpy()
    if len(auc) < 2:
        return dg.AssetCheckResult(passed=False, metadata={"n_users": len(auc), "reason": "too few users"})
    standard_error = float(auc.std(ddof=1) / np.sqrt(len(auc)))
    deviation = abs(float(auc.mean()) - 0.5)
    return dg.AssetCheckResult(
        passed=deviation <= 4 * standard_error,
        metadata={"mean_auc": float(auc.mean()), "standard_error": standard_error, "n_users": len(auc)},
    )


@dg.asset_check(
    pool="duckdb",
    asset="per_user_metrics",
    description="The best six-strategy CuratorNet beats Random on AUC (paired t-test, one-sided p < 0.05).",
)
def curatornet_beats_random(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    per_user = _per_user(duckdb)
    pivot = per_user.pivot_table(index="user_id", columns="method", values="auc").dropna()
    candidates = [m for m in pivot.columns if m.startswith("CuratorNet (")]
    if not candidates or "Random" not in pivot.columns:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "CuratorNet or Random missing"})
    best = max(candidates, key=lambda m: pivot[m].mean())
    result = stats.ttest_rel(pivot[best], pivot["Random"], alternative="greater")
    return dg.AssetCheckResult(
        passed=bool(result.pvalue < 0.05),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "method": best,
            "mean_auc": float(pivot[best].mean()),
            "random_mean_auc": float(pivot["Random"].mean()),
            "p_value": float(result.pvalue),
            "n_users": int(len(pivot)),
        },
    )


@dg.asset_check(
    pool="duckdb", asset="metric_table", blocking=True, description="Exactly one row per method, with n_users > 0."
)
def one_row_per_method(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        table = read_frame(con, f"SELECT method, n_users FROM {tables.METRIC_TABLE}")
        expected = set(read_frame(con, f"SELECT DISTINCT method FROM {tables.PER_USER_METRICS}")["method"])
    duplicated = int(table["method"].duplicated().sum())
    return dg.AssetCheckResult(
        passed=duplicated == 0 and set(table["method"]) == expected and bool((table["n_users"] > 0).all()),
        metadata={"methods": sorted(table["method"]), "duplicated_rows": duplicated},
    )


@dg.asset_check(
    pool="duckdb",
    asset="figure_3",
    blocking=True,
    description=(
        "Figure 3 is complete: CuratorNet and VBPR, each with a guided and a random-sampling AUC from the metric "
        "table, a p-value in [0, 1] and the paper's values."
    ),
)
def figure_3_is_complete(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        figure = read_frame(con, f"SELECT * FROM {tables.FIGURE_3}")
        table = read_frame(con, f"SELECT method, auc FROM {tables.METRIC_TABLE}").set_index("method")["auc"]
    problems = []
    if sorted(figure["model"]) != ["CuratorNet", "VBPR"]:
        problems.append(f"models {sorted(figure['model'])}")
    for row in figure.itertuples():
        for method, auc in ((row.guided_method, row.guided_auc), (row.random_method, row.random_auc)):
            if method not in table.index or not np.isclose(table[method], auc):
                problems.append(f"{method}: AUC {auc} not the metric table's")
        # Identical per-user AUCs (a tiny gallery) leave the paired t-test undefined: NaN is then the honest value.
        undefined = np.isnan(row.p_value) and np.isnan(row.t) and row.auc_difference == 0
        if not (0 <= row.p_value <= 1 or undefined):
            problems.append(f"{row.model}: p-value {row.p_value}")
        if np.isnan([row.paper_guided_auc, row.paper_random_auc, row.paper_p_value]).any():
            problems.append(f"{row.model}: paper values missing")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"problems": dg.MetadataValue.json(problems), "bars": 2 * len(figure)},
    )
