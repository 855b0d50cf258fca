"""Checks on the trained models: each trained on the triplets the paper prescribes for it."""

import json

import dagster as dg
from dagster_duckdb import DuckDBResource

from curatornet_pipeline import tables
from curatornet_pipeline.readers import VBPR_GUIDED_TRIPLETS, VBPR_RANDOM_TRIPLETS, TripletSource
from curatornet_pipeline.storage import read_frame
from curatornet_pipeline.tables import RANDOM_SAMPLING, STRATEGIES_3_AND_4


def vbpr_trained_on_check(name: str, asset: str, description: str, variant: str, source: TripletSource):
    """A blocking check that every VBPR model of ``variant`` lists ``source``'s strategies and trained on its rows."""

    @dg.asset_check(name=name, pool="duckdb", asset=asset, blocking=True, description=description)
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        return _vbpr_trained_on(duckdb, variant, source)

    return _check


def _vbpr_trained_on(duckdb: DuckDBResource, variant: str, source: TripletSource) -> dg.AssetCheckResult:
    """Every model of ``variant`` lists exactly ``source``'s strategies and trained on exactly its rows."""
    marks = ", ".join("?" for _ in source.strategies)
    with duckdb.get_connection() as con:
        models = read_frame(
            con, f"SELECT model_id, config, n_train_triplets FROM {tables.VBPR_MODELS} WHERE variant = ?", [variant]
        )
        available = int(
            con.execute(
                f"SELECT count(*) FROM {source.triplets} WHERE split = 'train' AND strategy IN ({marks})",
                list(source.strategies),
            ).fetchone()[0]
        )
    wrong = {
        row.model_id: {"strategies": json.loads(row.config).get("strategies"), "n_train_triplets": int(row.n_train_triplets)}
        for row in models.itertuples()
        if json.loads(row.config).get("strategies") != list(source.strategies) or int(row.n_train_triplets) != available
    }
    return dg.AssetCheckResult(
        passed=len(models) > 0 and not wrong,
        metadata={
            "expected_strategies": list(source.strategies),
            "expected_train_triplets": available,
            "models": len(models),
            "wrong_models": dg.MetadataValue.json(wrong),
        },
    )


vbpr_trained_on_strategies_3_and_4 = vbpr_trained_on_check(
    "vbpr_trained_on_strategies_3_and_4",
    "vbpr_model",
    "Guided VBPR trained on strategies 3 and 4 only (paper 5.1), on every such training triplet.",
    STRATEGIES_3_AND_4,
    VBPR_GUIDED_TRIPLETS,
)

vbpr_trained_on_random_sampling = vbpr_trained_on_check(
    "vbpr_trained_on_random_sampling",
    "vbpr_random_sampling_model",
    "VBPR's random-sampling variant trained on the random_bpr triplets only, on every one of them.",
    RANDOM_SAMPLING,
    VBPR_RANDOM_TRIPLETS,
)
