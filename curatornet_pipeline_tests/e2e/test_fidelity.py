"""Reproducing the paper from the authors' files (issue 19): what the real graph does with them.

The whole-graph run of the session fixture is reused where it suffices; the authors' layouts (extra embedding
rows, a ``.dump()`` file, ``clusters.json``, published test baskets) are built in temporary folders from the tiny
demo gallery and run through the real job.
"""

import shutil

import dagster as dg
import duckdb

from curatornet_pipeline import tables
from curatornet_pipeline.checks.triplets import _test_rows_in_sampler_inputs
from curatornet_pipeline.resources import CuratorDuckDB


def _check_results(result: dg.ExecuteInProcessResult) -> dict:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_sampler_inputs_hold_no_test_row_and_the_check_catches_one(materialized, tmp_path):
    checks = _check_results(materialized.result)
    for name in ("sampler_inputs_hold_no_test_rows", "random_sampler_inputs_hold_no_test_rows"):
        assert checks[name].passed
        metadata = {k: v.value for k, v in checks[name].metadata.items()}
        assert metadata["rows_read"] > 0 and metadata["non_training_rows_read"] == 0
        assert metadata["history_items_held_out"] == 0
    # A split that labelled a held-out row "train" as well would put it into a training history: caught.
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(materialized.database, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(
            f"INSERT INTO {tables.LAST_BASKET_SPLIT} "
            f"SELECT * REPLACE ('train' AS split) FROM {tables.LAST_BASKET_SPLIT} WHERE split = 'test' LIMIT 1"
        )
    found = _test_rows_in_sampler_inputs(CuratorDuckDB(database=str(copy)))
    assert found["history_items_held_out"] == 1
