"""End to end through the real web UI stack: `dagster dev` (webserver + daemon + code server) on a temporary
instance, the whole graph launched and read back over GraphQL, then everything shut down.

This is what a user does with `make ui`: the code location must load in the server, the queued run must be
picked up by the daemon and succeed, every asset check must have passed, the UI must show the schedule and
sensor running and the model's freshness, and the DuckDB file must hold the tables.

The launch path (GraphQL -> run queue -> daemon -> run launcher -> run worker process) is the one
``make ui`` takes; the code location's in-process executor then runs every step in that worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from curatornet_pipeline import automation
from curatornet_pipeline.assets.cold_start import GROUP as COLD_START_GROUP
from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB
from curatornet_pipeline_tests.support.tiny import tiny_resources, tiny_run_config
from curatornet_pipeline_tests.support.processes import (
    VENV_BIN,
    free_port,
    log_tail,
    make_dagster_home,
    listening_pid,
    pipeline_env,
    processes_with_env,
    session_members,
    start_in_new_session,
    stop_session,
)

# Generous deadlines: the machine running the suite may have two busy cores shared with other work, and
# dagster dev starts three Python processes that each import dagster (the code server and run worker torch too).
SERVER_DEADLINE_S = 300
RUN_DEADLINE_S = 600
FRESHNESS_DEADLINE_S = 180
HTTP_TIMEOUT_S = 60
PORT_ATTEMPTS = 3
# A cron that cannot fire during the test (1 January, 03:00), so the only run is the one launched here.
QUIET_CRON = "0 3 1 1 *"

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
AUTOMATION_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name cronSchedule scheduleState { status } }
    sensors { name sensorState { status } } } } } }
"""
ASSETS_QUERY = """
{ assetNodes {
    assetKey { path } groupName
    assetMaterializations(limit: 1) { runId }
    assetChecksOrError { __typename ... on AssetChecks { checks {
        name executionForLatestMaterialization { runId status evaluation { severity } } } } }
    internalFreshnessPolicy { __typename }
    freshnessStatusInfo { freshnessStatus } } }
"""
RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId status jobName } } } }"
FAILURES_QUERY = """
query ($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
    __typename ... on ExecutionStepFailureEvent { stepKey error { message } }
    ... on RunFailureEvent { message } } } } }
"""
KEY_TABLES = [
    "ingest.raw_artworks",
    "ingest.raw_transactions",
    "features.resnet50_embeddings",
    "features.visual_clusters",
    "split.last_basket_split",
    "triplets.training_triplets",
    "model.curatornet_models",
    "model.item_embeddings",
    "evaluation.recommendations",
    "evaluation.metric_table",
]


class UI:
    """The GraphQL endpoint of the running webserver."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=HTTP_TIMEOUT_S)

    def query(self, text: str, variables: dict | None = None) -> dict:
        response = requests.post(self.url, json={"query": text, "variables": variables or {}}, timeout=HTTP_TIMEOUT_S)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def wait_for_code_location(ui: UI, port: int, server: subprocess.Popen, log: Path) -> bool:
    """Wait until OUR webserver listens on ``port`` and the code location has loaded.

    Returns False when the webserver could not bind the port (another program took it after free_port()
    chose it), so the caller can start again on another port.
    """
    deadline = time.monotonic() + SERVER_DEADLINE_S
    while True:
        if server.poll() is not None:
            if "address already in use" in log_tail(log).lower():
                return False
            pytest.fail(f"dagster dev exited with {server.returncode}:\n{log_tail(log)}")
        assert time.monotonic() < deadline, f"code location not loaded after {SERVER_DEADLINE_S}s:\n{log_tail(log)}"
        # Query only once a process of our dagster dev session holds the port, never whoever else might.
        if listening_pid(port, session_members(server.pid)) is None:
            time.sleep(1)
            continue
        try:
            workspace = ui.query(WORKSPACE_QUERY)["workspaceOrError"]
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(1)
            continue
        entries = workspace.get("locationEntries", [])
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            [entry] = entries
            loaded = entry["locationOrLoadError"]
            assert loaded["__typename"] == "RepositoryLocation", f"code location failed to load: {loaded}"
            return True
        time.sleep(1)


def start_dagster_dev(env: dict[str, str], log_dir: Path) -> tuple[subprocess.Popen, UI, Path]:
    """`dagster dev` on a free port of 127.0.0.1 with its code location loaded: (process, UI, its log)."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        log = log_dir / f"dagster_dev_{attempt}.log"
        command = [str(VENV_BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
        server = start_in_new_session(command, env, log)
        ui = UI(port)
        try:
            if wait_for_code_location(ui, port, server, log):
                return server, ui, log
        except BaseException:
            stop_session(server)
            raise
        stop_session(server)
    pytest.fail(f"dagster dev found its port taken {PORT_ATTEMPTS} times:\n{log_tail(log)}")


def wait_for_run(ui: UI, run_id: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + RUN_DEADLINE_S
    while True:
        status = ui.client.get_run_status(run_id)
        if status == dg.DagsterRunStatus.SUCCESS:
            return
        if status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            events = ui.query(FAILURES_QUERY, {"runId": run_id})["logsForRun"]["events"]
            failures = [e for e in events if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")]
            pytest.fail(f"run {run_id} ended {status}: {failures}")
        assert server.poll() is None, f"dagster dev died during the run:\n{log_tail(log)}"
        assert time.monotonic() < deadline, f"run {run_id} still {status} after {RUN_DEADLINE_S}s:\n{log_tail(log)}"
        time.sleep(2)


def wait_for_fresh_model(ui: UI) -> list[dict]:
    """Asset nodes with a freshness policy, once the freshness daemon has evaluated them all."""
    deadline = time.monotonic() + FRESHNESS_DEADLINE_S
    while True:
        nodes = [n for n in ui.query(ASSETS_QUERY)["assetNodes"] if n["internalFreshnessPolicy"]]
        statuses = {n["freshnessStatusInfo"]["freshnessStatus"] for n in nodes}
        if nodes and statuses == {"HEALTHY"}:
            return nodes
        seen = [(n["assetKey"]["path"], n["freshnessStatusInfo"]) for n in nodes]
        assert time.monotonic() < deadline, f"freshness {FRESHNESS_DEADLINE_S}s after the run: {seen}"
        time.sleep(2)


@pytest.mark.slow
def test_ui_materializes_the_graph_and_reports_every_check(tmp_path):
    home = make_dagster_home(tmp_path / "dagster_home")
    data_dir = tmp_path / "data"
    env = pipeline_env(
        home,
        data_dir,
        **{automation.REFRESH_CRON_ENV: QUIET_CRON, "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5"},
    )
    # The full refresh runs every asset and check but the cold-start group's (a job of its own).
    graph = build_definitions(tiny_resources(tmp_path)).resolve_asset_graph()
    expected_checks = {
        (tuple(key.asset_key.path), key.name)
        for key in graph.asset_check_keys
        if graph.get(key.asset_key).group_name != COLD_START_GROUP
    }
    server, ui, log = start_dagster_dev(env, tmp_path)
    try:
        [repository] = ui.query(AUTOMATION_QUERY)["repositoriesOrError"]["nodes"]
        schedules = {s["name"]: s for s in repository["schedules"]}
        sensors = {s["name"]: s for s in repository["sensors"]}
        assert schedules[automation.REFRESH_SCHEDULE_NAME]["scheduleState"]["status"] == "RUNNING"
        assert schedules[automation.REFRESH_SCHEDULE_NAME]["cronSchedule"] == QUIET_CRON
        assert sensors[automation.SOURCE_SENSOR_NAME]["sensorState"]["status"] == "RUNNING"

        run_config = tiny_run_config()
        run_id = ui.client.submit_job_execution(FULL_REFRESH_JOB, run_config=run_config, tags=ALL_STRATEGIES_TAGS)
        wait_for_run(ui, run_id, server, log)

        nodes = [n for n in ui.query(ASSETS_QUERY)["assetNodes"] if n["groupName"] != COLD_START_GROUP]
        for node in nodes:
            assert [m["runId"] for m in node["assetMaterializations"]] == [run_id], node["assetKey"]
        checks = {}
        for node in nodes:
            assert node["assetChecksOrError"]["__typename"] == "AssetChecks"
            for check in node["assetChecksOrError"]["checks"]:
                checks[(tuple(node["assetKey"]["path"]), check["name"])] = check["executionForLatestMaterialization"]
        assert set(checks) == expected_checks
        # Every check ran in this run and produced a result; every ERROR-severity check passed. A WARN check
        # may report a failure (e.g. a significance test on the tiny gallery's handful of test users): that
        # is the check doing its job, shown in the UI as a warning, not a broken pipeline.
        assert {key: e for key, e in checks.items() if e is None or e["runId"] != run_id} == {}
        assert {key: e["status"] for key, e in checks.items() if e["status"] not in ("SUCCEEDED", "FAILED")} == {}
        failed_errors = {
            key for key, e in checks.items() if e["status"] == "FAILED" and e["evaluation"]["severity"] != "WARN"
        }
        assert failed_errors == set()

        fresh = wait_for_fresh_model(ui)
        assert {n["groupName"] for n in fresh} == set(automation.FRESHNESS_GROUPS)

        # No other run: the sensor ticks (folder missing, then a refresh in flight) and the schedule stayed quiet.
        runs = ui.query(RUNS_QUERY)["runsOrError"]["results"]
        assert [(r["runId"], r["status"]) for r in runs] == [(run_id, "SUCCESS")]
    finally:
        stragglers = stop_session(server)
    # dagster dev got Ctrl-C (SIGINT) alone and must have stopped everything it started within the grace period.
    assert stragglers == [], f"processes still alive after dagster dev's shutdown (killed): {stragglers}\n{log_tail(log)}"
    # Nothing started for this instance outlived the shutdown, inside the session or outside it.
    escaped = processes_with_env("DAGSTER_HOME", str(home))
    for pid in escaped:
        os.kill(pid, signal.SIGKILL)
    assert escaped == [], f"processes of this instance outside the dagster dev session (killed): {escaped}"

    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        n_artworks = con.execute("SELECT count(*) FROM ingest.raw_artworks").fetchone()[0]
        assert n_artworks > 0
        for table in KEY_TABLES:
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
        assert con.execute("SELECT count(*) FROM model.item_embeddings").fetchone()[0] >= n_artworks
