"""Online metrics end to end: seeded visitors browse, click and like through the real app (uvicorn), the app
records views and clicks, and the online_metrics asset and its check run through the real Dagster job."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta

import dagster as dg
import duckdb
import pytest

from curatornet_pipeline import cli, settings
from curatornet_pipeline.core.events import EVENTS_HEADER, IMPRESSIONS_FILE
from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.jobs import ONLINE_METRICS_JOB
from curatornet_pipeline_tests.support.tiny import tiny_resources
from curatornet_pipeline_tests.support.webapp import GALLERY, REPO, served_copy, start_server


@pytest.fixture(scope="module")
def server(materialized, tmp_path_factory):
    data_dir = served_copy(materialized.data_dir, tmp_path_factory.mktemp("online") / "data")
    running = start_server(data_dir, CURATORNET_LIKES_PER_MINUTE="1000")  # every simulated visitor is 127.0.0.1
    yield running
    running.stop()


def _run_online_job(data_dir) -> tuple[dg.ExecuteInProcessResult, list]:
    defs = build_definitions(tiny_resources(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(ONLINE_METRICS_JOB).execute_in_process(instance=instance)
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT * FROM online.metrics ORDER BY model_version, position").df()
    return result, rows


def _settled(path, seconds: float = 10.0) -> None:
    """Views are written after each answer is sent: wait until the file stops growing."""
    deadline, size = time.monotonic() + seconds, -1
    while time.monotonic() < deadline and path.stat().st_size != size:
        size = path.stat().st_size
        time.sleep(0.5)


def test_simulated_visitors_give_click_through_and_conversion_per_position(server):
    result, rows = _run_online_job(server.data_dir)  # before any visitor: an empty table, not a failure
    assert result.success and rows.empty
    assert all(e.passed for e in result.get_asset_check_evaluations())

    done = subprocess.run(
        [sys.executable, "benchmarks/simulate_visitors.py", "--url", server.url, "--visitors", "4", "--seed", "3",
         "--click-chance", "1", "--like-chance", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["clicks"] >= 1
    _settled(server.data_dir / GALLERY / IMPRESSIONS_FILE)

    result, rows = _run_online_job(server.data_dir)
    assert result.success
    with duckdb.connect(str(server.snapshot), read_only=True) as con:
        version = con.execute("SELECT model_version FROM info").fetchone()[0]
    assert set(rows["model_version"]) == {version}
    assert rows["position"].min() == 1 and rows["impressions"].sum() > summary["clicks"]
    assert rows["clicks"].sum() == summary["clicks"]  # every click came from a recommended list, position named
    # Every clicked work was liked at once (like chance 1), after at least one view of it.
    assert rows["conversions"].sum() >= summary["clicks"]
    assert (rows["click_through"] == rows["clicks"] / rows["impressions"]).all()
    plots = result.asset_materializations_for_node("online_metrics")[0].metadata
    assert "plot: click-through by position" in plots and "plot: conversion by position" in plots


def test_check_warns_when_the_newest_version_is_clicked_clearly_less(server):
    # Two later model versions, 400 impressions each: 20% click-through, then 7.5% (z about -5).
    start = datetime(2030, 1, 1)
    lines = []
    for day, (version, n_clicks) in enumerate((("m@older", 80), ("m@newer", 30)), start=1):
        stamp = (start + timedelta(days=day)).isoformat()
        for i in range(400):
            lines.append([f"{version}-v{i}", "view", f"u{i}", "a", stamp, stamp, "for_you", "1", version])
        for i in range(n_clicks):
            lines.append([f"{version}-c{i}", "click", f"u{i}", "a", stamp, stamp, "for_you", "1", version])
    path = server.data_dir / GALLERY / IMPRESSIONS_FILE
    text = "" if path.exists() else ",".join(EVENTS_HEADER) + "\n"
    with path.open("a") as handle:
        handle.write(text + "".join(",".join(line) + "\n" for line in lines))

    result, _ = _run_online_job(server.data_dir)
    [evaluation] = result.get_asset_check_evaluations()
    assert result.success and not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert (meta["older_version"], meta["newer_version"]) == ("m@older", "m@newer")
    assert meta["p_value"] < 0.01 and meta["newer_impressions"] == 400


def test_the_cli_runs_the_online_metrics_job_by_name(server, monkeypatch, tmp_path, capsys):
    assert cli.ONLINE_METRICS_JOB == ONLINE_METRICS_JOB
    for name, value in ((settings.DATA_DIR_ENV, str(server.data_dir)), (settings.SOURCE_ENV, "demo"),
                        (settings.DEMO_SCALE_ENV, "tiny"), (settings.DAGSTER_HOME_ENV, str(tmp_path))):
        monkeypatch.setenv(name, value)
    assert cli.main(["materialize", "--job", ONLINE_METRICS_JOB]) == 0, capsys.readouterr().err
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        assert con.execute("SELECT sum(impressions) FROM online.metrics").fetchone()[0] > 0
