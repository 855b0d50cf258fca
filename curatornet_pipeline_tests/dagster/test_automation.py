"""The refresh schedule, the source-files sensor and the freshness policies, evaluated with Dagster's test contexts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from curatornet_pipeline import automation
from curatornet_pipeline.assets.ingest import source_files
from curatornet_pipeline.core.fingerprint import source_fingerprint
from curatornet_pipeline.core.sampling import STRATEGIES
from curatornet_pipeline.definitions import ALL_ASSETS, build_definitions
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB, SERVING_REFRESH_JOB
from curatornet_pipeline.resources import CuratorDuckDB, GallerySource
from curatornet_pipeline_tests.support.sources import run_requests, tick, write_image, write_ugallery_folder
from curatornet_pipeline_tests.support.tiny import tiny_resources


def start_refresh_run(instance: dg.DagsterInstance, tmp_path: Path, job_name: str = FULL_REFRESH_JOB) -> dg.DagsterRun:
    """Record a refresh run that is running right now (as a launched run would be)."""
    job = build_definitions(tiny_resources(tmp_path)).resolve_job_def(job_name)
    tags = ALL_STRATEGIES_TAGS if job_name == FULL_REFRESH_JOB else {}
    return instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED, tags=tags)


# ---------------------------------------------------------------------------------------------- schedule


def test_schedule_defaults_to_a_running_daily_refresh(monkeypatch):
    monkeypatch.delenv(automation.REFRESH_CRON_ENV, raising=False)
    monkeypatch.delenv(automation.REFRESH_TIMEZONE_ENV, raising=False)
    schedule = automation.build_refresh_schedule()
    assert schedule.name == automation.REFRESH_SCHEDULE_NAME
    assert schedule.job_name == FULL_REFRESH_JOB
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_schedule_cron_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(automation.REFRESH_CRON_ENV, "30 1 * * 1")
    monkeypatch.setenv(automation.REFRESH_TIMEZONE_ENV, "Europe/Berlin")
    schedule = automation.build_refresh_schedule()
    assert schedule.cron_schedule == "30 1 * * 1"
    assert schedule.execution_timezone == "Europe/Berlin"
    monkeypatch.setenv(automation.REFRESH_CRON_ENV, "every night")
    with pytest.raises(ValueError, match=automation.REFRESH_CRON_ENV):
        automation.build_refresh_schedule()


@pytest.fixture(scope="module")
def persistent_instance():
    # Schedule contexts need a persistent instance (they pass it on by reference); one per module is enough.
    with dg.instance_for_test() as instance:
        yield instance


def test_schedule_tick_requests_one_run_over_all_six_partitions(tmp_path, persistent_instance):
    defs = build_definitions(tiny_resources(tmp_path))
    schedule = automation.build_refresh_schedule("0 3 * * *", "UTC")
    context = dg.build_schedule_context(
        instance=persistent_instance, scheduled_execution_time=datetime(2026, 1, 5, 3, 0, tzinfo=timezone.utc)
    )
    request = schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[automation.TRIGGER_TAG] == "schedule"
    for key, value in ALL_STRATEGIES_TAGS.items():
        assert request.tags[key] == value
    job = defs.resolve_job_def(schedule.job_name)
    # The request's run config (the job's defaults) is accepted by the real job.
    dg.validate_run_config(job, request.run_config)
    # The range in the tags spans every sampling strategy, so one run samples all six partitions.
    triplets_partitions = defs.resolve_assets_def("triplets").partitions_def
    start = request.tags["dagster/asset_partition_range_start"]
    end = request.tags["dagster/asset_partition_range_end"]
    assert triplets_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end)) == list(STRATEGIES)
    assert len(STRATEGIES) == 6


def test_schedule_skips_while_a_refresh_is_running(tmp_path, persistent_instance):
    schedule = automation.build_refresh_schedule("0 3 * * *", "UTC")
    running = start_refresh_run(persistent_instance, tmp_path)
    try:
        result = schedule(dg.build_schedule_context(instance=persistent_instance))
    finally:
        persistent_instance.delete_run(running.run_id)
    assert isinstance(result, dg.SkipReason)
    assert running.run_id in result.skip_message


# ------------------------------------------------------------------------------------------------ sensor


def test_sensor_skips_until_the_source_folder_exists(tmp_path):
    with dg.DagsterInstance.ephemeral() as instance:
        demo = GallerySource(source="demo", data_dir=str(tmp_path / "data"), demo_scale="tiny")
        result = tick(demo, instance)
        assert isinstance(result, dg.SkipReason)
        assert str(demo.folder()) in result.skip_message and "does not exist" in result.skip_message

        missing = GallerySource(source=str(tmp_path / "no_such_folder"))
        result = tick(missing, instance)
        assert isinstance(result, dg.SkipReason)
        assert "CURATORNET_SOURCE" in result.skip_message

        (tmp_path / "empty").mkdir()
        result = tick(GallerySource(source=str(tmp_path / "empty")), instance)
        assert isinstance(result, dg.SkipReason) and "none of the source CSV files" in result.skip_message


def test_sensor_requests_one_run_per_change(tmp_path):
    folder = write_ugallery_folder(tmp_path / "gallery")
    gallery = GallerySource(source=str(folder))
    with dg.DagsterInstance.ephemeral() as instance:
        first = tick(gallery, instance)
        [request] = run_requests(first)
        assert first.cursor
        assert request.run_key == automation.change_run_key(None, first.cursor)
        assert request.tags[automation.SOURCE_DIGEST_TAG] == first.cursor
        # The fast path: no partitioned asset, so no partition range tags.
        assert not set(ALL_STRATEGIES_TAGS) & set(request.tags)

        # The cursor round-trips through a fresh context: same files, no run.
        unchanged = tick(gallery, instance, cursor=first.cursor)
        assert isinstance(unchanged, dg.SkipReason) and "no change" in unchanged.skip_message

        with (folder / "purchases.csv").open("a") as handle:
            handle.write("u2,4000,\"['c3']\"\n")
        after_purchase = tick(gallery, instance, cursor=first.cursor)
        [purchase_request] = run_requests(after_purchase)
        assert after_purchase.cursor != first.cursor
        assert purchase_request.run_key == automation.change_run_key(first.cursor, after_purchase.cursor)
        assert purchase_request.run_key != request.run_key
        assert isinstance(tick(gallery, instance, cursor=after_purchase.cursor), dg.SkipReason)

        write_image(folder / "images" / "c3.png", shade=200)
        after_image = tick(gallery, instance, cursor=after_purchase.cursor)
        [image_request] = run_requests(after_image)
        assert after_image.cursor not in {first.cursor, after_purchase.cursor}
        assert image_request.run_key not in {request.run_key, purchase_request.run_key}

        # Replacing an existing image is a change too.
        write_image(folder / "images" / "a1.png", shade=90)
        [replaced_request] = run_requests(tick(gallery, instance, cursor=after_image.cursor))
        assert replaced_request.run_key not in {request.run_key, purchase_request.run_key, image_request.run_key}


def test_run_key_names_the_transition():
    # Going back to earlier files is a change too, so it must not reuse the first run's key.
    a, b = "a" * 40, "b" * 40
    keys = {automation.change_run_key(None, a), automation.change_run_key(a, b), automation.change_run_key(b, a)}
    assert len(keys) == 3
    assert automation.change_run_key(a, b) == automation.change_run_key(a, b)


@pytest.mark.parametrize("job_name", [FULL_REFRESH_JOB, SERVING_REFRESH_JOB])
def test_sensor_waits_for_a_running_refresh(tmp_path, job_name):
    folder = write_ugallery_folder(tmp_path / "gallery")
    with dg.DagsterInstance.ephemeral() as instance:
        running = start_refresh_run(instance, tmp_path, job_name)
        result = tick(GallerySource(source=str(folder)), instance)
    # Skipped without moving the cursor, so the change is still seen after the run ends.
    assert isinstance(result, dg.SkipReason)
    assert running.run_id in result.skip_message


def test_sensor_does_not_rerun_files_that_were_already_ingested(tmp_path):
    folder = write_ugallery_folder(tmp_path / "gallery")
    gallery = GallerySource(source=str(folder))
    with dg.DagsterInstance.ephemeral() as instance:
        # A real materialization of source_files records the fingerprints of these files.
        resources = {"gallery": gallery, "duckdb": CuratorDuckDB(database=str(tmp_path / "curatornet.duckdb"))}
        assert dg.materialize([source_files], resources=resources, instance=instance).success
        result = tick(gallery, instance)
        assert run_requests(result) == []
        assert result.cursor == automation.source_state_digest(
            folder, source_fingerprint(folder)
        )
        with (folder / "inventory.csv").open("a") as handle:
            handle.write("d4,y,1300\n")
        assert len(run_requests(tick(gallery, instance, cursor=result.cursor))) == 1


def test_sensor_names_only_the_files_that_changed(tmp_path):
    folder = write_ugallery_folder(tmp_path / "gallery")
    gallery = GallerySource(source=str(folder))
    with dg.DagsterInstance.ephemeral() as instance:
        [first] = run_requests(tick(gallery, instance))
        # Nothing ingested yet: every file is new.
        assert first.tags[automation.CHANGED_FILES_TAG] == "images/,inventory.csv,purchases.csv"
        resources = {"gallery": gallery, "duckdb": CuratorDuckDB(database=str(tmp_path / "curatornet.duckdb"))}
        assert dg.materialize([source_files], resources=resources, instance=instance).success
        (folder / "likes.csv").write_text("visitor_id,artwork_id,timestamp\nv1,a1,5000\n")
        result = tick(gallery, instance)
        [request] = run_requests(result)
        assert request.tags[automation.CHANGED_FILES_TAG] == "likes.csv"
        with (folder / "purchases.csv").open("a") as handle:
            handle.write("u2,4000,\"['c3']\"\n")
        [both] = run_requests(tick(gallery, instance, cursor=result.cursor))
        assert both.tags[automation.CHANGED_FILES_TAG] == "likes.csv,purchases.csv"


# --------------------------------------------------------------------------------------------- freshness


def test_model_freshness_windows():
    policy = automation.build_model_freshness(26, 50)
    assert policy.warn_window.to_timedelta() == timedelta(hours=26)
    assert policy.fail_window.to_timedelta() == timedelta(hours=50)
    with pytest.raises(ValueError, match="warn < fail"):
        automation.build_model_freshness(50, 26)


def test_model_freshness_from_environment(monkeypatch):
    monkeypatch.setenv(automation.FRESHNESS_WARN_HOURS_ENV, "12")
    monkeypatch.setenv(automation.FRESHNESS_FAIL_HOURS_ENV, "30")
    policy = automation.build_model_freshness()
    assert policy.warn_window.to_timedelta() == timedelta(hours=12)
    assert policy.fail_window.to_timedelta() == timedelta(hours=30)
    monkeypatch.setenv(automation.FRESHNESS_FAIL_HOURS_ENV, "soon")
    with pytest.raises(ValueError, match=automation.FRESHNESS_FAIL_HOURS_ENV):
        automation.build_model_freshness()


def test_freshness_lands_on_model_and_evaluation_assets_only(tmp_path):
    assets = automation.apply_freshness_policies(ALL_ASSETS)
    graph = dg.Definitions(assets=assets, resources=tiny_resources(tmp_path)).resolve_asset_graph()
    groups_seen = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.group_name in automation.FRESHNESS_GROUPS:
            groups_seen.add(node.group_name)
            assert node.freshness_policy == automation.MODEL_FRESHNESS, key
        else:
            assert node.freshness_policy is None, key
    assert groups_seen == set(automation.FRESHNESS_GROUPS)


# ------------------------------------------------------------------------------------------------ wiring


def test_code_location_carries_the_automation(tmp_path):
    """The definitions users load (UI, daemon) hold the schedule, the sensor and the model freshness."""
    defs = build_definitions(tiny_resources(tmp_path))
    schedule = defs.resolve_schedule_def(automation.REFRESH_SCHEDULE_NAME)
    sensor = defs.resolve_sensor_def(automation.SOURCE_SENSOR_NAME)
    assert schedule.job_name == FULL_REFRESH_JOB  # the slow cadence retrains
    assert sensor.job_name == SERVING_REFRESH_JOB  # new data takes the fast path
    assert sensor.minimum_interval_seconds == automation.SENSOR_INTERVAL_SECONDS
    graph = defs.resolve_asset_graph()
    fresh = [k for k in graph.get_all_asset_keys() if graph.get(k).freshness_policy == automation.MODEL_FRESHNESS]
    assert any(graph.get(k).group_name == "model" for k in fresh)
    assert any(graph.get(k).group_name == "evaluation" for k in fresh)
