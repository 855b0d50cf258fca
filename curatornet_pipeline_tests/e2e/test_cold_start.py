"""The cold-start job on the tiny demo gallery: both protocols materialize through the real job after the full
refresh, their checks pass, no held-out customer or post-cut-off purchase reaches training, and the checks
fail when one does."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from curatornet_pipeline import jobs, settings, tables
from curatornet_pipeline.checks.cold_start import new_customers_absent_from_training, no_training_purchase_after_cutoff
from curatornet_pipeline.cli import COLD_START_JOB, FULL_REFRESH_JOB, build_parser, main
from curatornet_pipeline.core import cold_start
from curatornet_pipeline.core.cold_start_evaluation import CURATORNET, VBPR, VBPR_FOLD_IN, VBPR_NO_FOLD_IN
from curatornet_pipeline.resources import CuratorDuckDB
from curatornet_pipeline_tests.support.tiny import COLD_START_ASSETS
from curatornet_pipeline_tests.support.datastore import copy_database, edit_table


def _query(database, sql):
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).df()


def test_the_cold_start_job_materializes_both_protocols_and_every_check_passes(materialized):
    result = materialized.cold_start
    assert result.success
    keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert keys == set(COLD_START_ASSETS)
    checks = {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks == {"new_customers_absent_from_training": True, "no_training_purchase_after_cutoff": True}
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    for key in COLD_START_ASSETS:
        assert {"plot: AUC by method", "plot: AUC vs Table 2", "table: metrics", "table: serving cost"} <= set(
            metadata[key]
        ), key
    # The tiny gallery's few late baskets may buy no new artwork; the unit tests' gallery does (test_cold_start).
    assert metadata["new_artwork_metrics"]["n_target_artworks_new"].value >= 0
    assert metadata["new_customer_metrics"]["n_users"].value > 0


def test_both_metric_tables_hold_every_method_with_t_tests_and_serving_cost(materialized):
    customers = _query(materialized.database, f"SELECT * FROM {tables.NEW_CUSTOMER_METRICS}").set_index("method")
    assert set(customers.index) == {CURATORNET, VBPR_FOLD_IN, VBPR_NO_FOLD_IN, "VisRank", "Most-Popular", "Random"}
    assert customers["auc"].between(0, 1).all() and (customers["n_users"] > 0).all()
    assert customers.drop(index=CURATORNET)["auc_p_value_vs_curatornet"].notna().any()
    assert customers.loc[[CURATORNET, VBPR_FOLD_IN], "serving_seconds"].gt(0).all()
    artworks = _query(materialized.database, f"SELECT * FROM {tables.NEW_ARTWORK_METRICS}").set_index("method")
    assert set(artworks.index) == {CURATORNET, VBPR, "VisRank", "Most-Popular", "Random"}
    protocols = _query(materialized.database, f"SELECT * FROM {tables.COLD_START_PROTOCOLS}").set_index("protocol")
    assert protocols.at["new_customers", "fold_in_loss_after"] < protocols.at["new_customers", "fold_in_loss_before"]


def test_no_held_out_customer_in_any_training_table_and_the_configured_share_of_repeat_buyers_held_out(materialized):
    db = materialized.database
    held = set(_query(db, f"SELECT user_id FROM {tables.COLD_START_USERS} WHERE protocol = 'new_customers'")["user_id"])
    repeat = set(_query(db, f"SELECT DISTINCT user_id FROM {tables.LAST_BASKET_SPLIT} WHERE split = 'test'")["user_id"])
    fraction = _query(db, f"SELECT held_out_fraction FROM {tables.COLD_START_PROTOCOLS} WHERE protocol = 'new_customers'")
    assert held <= repeat and len(held) == round(fraction["held_out_fraction"].iloc[0] * len(repeat))
    for table in (tables.COLD_START_TRAINING_PURCHASES, tables.COLD_START_TRIPLET_USERS):
        seen = set(_query(db, f"SELECT user_id FROM {table} WHERE protocol = 'new_customers'")["user_id"])
        assert seen and not seen & held, table
    # Everyone else's training rows all train (nothing else was removed), and no held-out basket does.
    others_training = _query(
        db,
        f"SELECT count(*) AS n FROM {tables.LAST_BASKET_SPLIT} WHERE split = 'train' AND user_id NOT IN "
        f"(SELECT user_id FROM {tables.COLD_START_USERS} WHERE protocol = 'new_customers')",
    )
    training = _query(db, f"SELECT count(*) AS n FROM {tables.COLD_START_TRAINING_PURCHASES} WHERE protocol = 'new_customers'")
    assert training["n"].iloc[0] == others_training["n"].iloc[0]


def test_no_training_purchase_after_the_cutoff(materialized):
    db = materialized.database
    cutoff = _query(db, f"SELECT cutoff FROM {tables.COLD_START_PROTOCOLS} WHERE protocol = 'new_artworks'")["cutoff"].iloc[0]
    training = _query(db, f"SELECT purchase_timestamp FROM {tables.COLD_START_TRAINING_PURCHASES} WHERE protocol = 'new_artworks'")
    assert len(training) > 0 and (training["purchase_timestamp"] <= cutoff).all()


@pytest.fixture
def leaky_copy(materialized, tmp_path):
    copy_database(materialized.database, tmp_path / "copy.duckdb")
    return CuratorDuckDB(database=str(tmp_path / "copy.duckdb"))


def test_the_checks_fail_when_a_held_out_customer_or_a_late_purchase_reaches_training(leaky_copy):
    assert new_customers_absent_from_training(duckdb=leaky_copy).passed
    assert no_training_purchase_after_cutoff(duckdb=leaky_copy).passed
    database = Path(leaky_copy.database)
    edit_table(
        database,
        tables.COLD_START_TRIPLET_USERS.name,
        f"INSERT INTO {tables.COLD_START_TRIPLET_USERS} SELECT 'new_customers', user_id, 1, 0 "
        f"FROM {tables.COLD_START_USERS} WHERE protocol = 'new_customers' LIMIT 1",
    )
    edit_table(
        database,
        tables.COLD_START_TRAINING_PURCHASES.name,
        f"UPDATE {tables.COLD_START_TRAINING_PURCHASES} SET purchase_timestamp = purchase_timestamp + INTERVAL 3650 DAY "
        "WHERE protocol = 'new_artworks' AND source_row = (SELECT max(source_row) FROM "
        f"{tables.COLD_START_TRAINING_PURCHASES} WHERE protocol = 'new_artworks')",
    )
    leaked = new_customers_absent_from_training(duckdb=leaky_copy)
    assert not leaked.passed and leaked.metadata["new_customers_in_triplets"].value == 1
    late = no_training_purchase_after_cutoff(duckdb=leaky_copy)
    assert not late.passed and late.metadata["training_purchases_after_cutoff"].value == 1


def test_the_cli_runs_the_cold_start_job_by_name_and_the_protocol_names_agree():
    assert (FULL_REFRESH_JOB, COLD_START_JOB) == (jobs.FULL_REFRESH_JOB, jobs.COLD_START_JOB)
    assert build_parser().parse_args(["materialize"]).job == jobs.FULL_REFRESH_JOB
    assert build_parser().parse_args(["materialize", "--job", COLD_START_JOB]).job == jobs.COLD_START_JOB
    assert (tables.NEW_CUSTOMERS, tables.NEW_ARTWORKS) == (cold_start.NEW_CUSTOMERS, cold_start.NEW_ARTWORKS)


def test_the_paper_preset_is_refused_for_the_cold_start_job_in_one_sentence(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path))
    assert main(["materialize", "--job", COLD_START_JOB, "--preset", "paper"]) == 2
    error = capsys.readouterr().err
    assert error.splitlines()[0].startswith("error: --preset paper") and "Traceback" not in error
