"""The definitions as Dagster sees them, and assets and checks invoked directly with Dagster's test contexts."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from curatornet_pipeline.assets import evaluation
from curatornet_pipeline.checks.evaluation import figure_3_is_complete
from curatornet_pipeline.resources import CuratorDuckDB
from curatornet_pipeline_tests.support.datastore import copy_database, edit_table

REPO = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "CURATORNET_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _copy_of(materialized, tmp_path: Path) -> CuratorDuckDB:
    copy_database(materialized.database, tmp_path / "copy.duckdb")
    return CuratorDuckDB(database=str(tmp_path / "copy.duckdb"))


def _table(resource: CuratorDuckDB, sql: str) -> pd.DataFrame:
    with duckdb.connect(resource.database, read_only=True) as con:
        return con.execute(sql).df()


def test_metric_table_asset_invoked_directly_rebuilds_the_table_the_run_wrote(materialized, tmp_path):
    resource = _copy_of(materialized, tmp_path)
    written = _table(resource, "SELECT method, auc, ndcg_at_20 FROM evaluation.metric_table ORDER BY method")
    edit_table(Path(resource.database), "evaluation.metric_table", "DELETE FROM evaluation.metric_table")

    result = evaluation.metric_table(dg.build_asset_context(), duckdb=resource)

    assert isinstance(result, dg.MaterializeResult)
    rebuilt = _table(resource, "SELECT method, auc, ndcg_at_20 FROM evaluation.metric_table ORDER BY method")
    pd.testing.assert_frame_equal(rebuilt, written)


def test_figure_3_check_invoked_directly_fails_when_a_bar_is_missing(materialized, tmp_path):
    resource = _copy_of(materialized, tmp_path)
    assert figure_3_is_complete(duckdb=resource).passed
    edit_table(Path(resource.database), "evaluation.figure_3", "DELETE FROM evaluation.figure_3 WHERE model = 'VBPR'")
    assert not figure_3_is_complete(duckdb=resource).passed
