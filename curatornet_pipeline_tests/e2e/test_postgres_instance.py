"""The deployment instance file (deploy/dagster.yaml) against a real PostgreSQL server.

A throwaway PostgreSQL cluster is created in a temporary folder and served on 127.0.0.1 on a free port;
deploy/dagster.yaml is used unchanged as the instance file, with the DAGSTER_PG_* variables pointing at the
server. A run of the real full-refresh job (a cheap subset of its assets) must then leave its run, its
materializations, its check results and the duckdb pool limit in PostgreSQL — seen through the Dagster
instance API and through plain SQL. If PostgreSQL is not installed, the test installs it with apt-get and
fails (never skips) when that is impossible.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.jobs import FULL_REFRESH_JOB
from curatornet_pipeline_tests.support.tiny import tiny_resources, tiny_run_config
from curatornet_pipeline_tests.support.processes import DEPLOY_DAGSTER_YAML, free_port, make_dagster_home

SUBSET = ["source_files", "raw_artworks", "raw_transactions", "last_basket_split"]
DB_USER, DB_NAME = "dagster", "curatornet_dagster"
APT_TIMEOUT_S = 300
# initdb and the server start take seconds on an idle machine, far longer on two cores shared with other work.
SERVER_TIMEOUT_S = 180
PORT_ATTEMPTS = 3


def postgres_bin_dir() -> Path:
    """Folder of initdb/pg_ctl, installing the Debian postgresql package if none is found."""

    def find() -> Path | None:
        on_path = shutil.which("initdb")
        if on_path and shutil.which("pg_ctl"):
            return Path(on_path).resolve().parent
        installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        return Path(installed[-1]).parent if installed else None

    found = find()
    if found:
        return found
    commands = [["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]]
    for command in commands:
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=APT_TIMEOUT_S,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            pytest.fail(f"PostgreSQL is not installed and `{' '.join(command)}` could not run: {error}")
        if done.returncode != 0:
            pytest.fail(
                f"PostgreSQL is not installed and `{' '.join(command)}` failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
    found = find()
    if not found:
        pytest.fail("apt-get installed postgresql but no initdb was found in PATH or /usr/lib/postgresql/*/bin")
    return found


def as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; tests run as root in CI, so hand them to `postgres`.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture
def postgres_server():
    """A running PostgreSQL server on 127.0.0.1:<free port> with an empty database; yields its settings."""
    bin_dir = postgres_bin_dir()
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="curatornet-pg-"))
    cluster = root / "cluster"
    server_log = root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres", group="postgres")
    try:
        subprocess.run(
            as_server_user([str(bin_dir / "initdb"), "-D", str(cluster), "-U", DB_USER, "--auth=trust", "-E", "UTF8",
                            "--no-sync"]),
            check=True, capture_output=True, timeout=SERVER_TIMEOUT_S,
        )
        # free_port() only finds a port that was free a moment ago: another program (other test runs share the
        # machine) can take it before the server binds it. pg_ctl -w then fails; try again on another port.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()
            options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            started = subprocess.run(
                as_server_user([str(bin_dir / "pg_ctl"), "-D", str(cluster), "-o", options, "-l", str(server_log),
                                "-w", "-t", str(SERVER_TIMEOUT_S), "start"]),
                capture_output=True, timeout=SERVER_TIMEOUT_S + 10,
            )
            if started.returncode == 0:
                break
            log = server_log.read_text() if server_log.exists() else ""
            if "already in use" not in log or attempt == PORT_ATTEMPTS:
                raise subprocess.CalledProcessError(started.returncode, started.args, started.stdout, started.stderr)
            server_log.unlink()
        admin = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres")
        try:
            admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DB_NAME}")
        finally:
            admin.close()
        yield {"DAGSTER_PG_USERNAME": DB_USER, "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_HOST": "127.0.0.1",
               "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_DB": DB_NAME}
    except subprocess.CalledProcessError as error:
        log = server_log.read_text() if server_log.exists() else ""
        pytest.fail(f"PostgreSQL did not start: {error}\n{error.stderr!r}\n{log[-3000:]}")
    finally:
        # Whenever a server may be up (also after pg_ctl timed out waiting for it), stop it: it runs detached.
        if (cluster / "postmaster.pid").exists():
            subprocess.run(
                as_server_user([str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop"]),
                capture_output=True, timeout=SERVER_TIMEOUT_S,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_deploy_instance_records_runs_in_postgres(postgres_server, tmp_path, monkeypatch):
    for name, value in postgres_server.items():
        monkeypatch.setenv(name, value)
    home = make_dagster_home(tmp_path / "dagster_home", DEPLOY_DAGSTER_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    defs = build_definitions(tiny_resources(tmp_path / "data"))
    job = defs.resolve_job_def(FULL_REFRESH_JOB)

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        result = job.execute_in_process(
            instance=instance,
            run_config=tiny_run_config(),
            asset_selection=[dg.AssetKey(name) for name in SUBSET],
        )
        assert result.success
        record = instance.get_run_record_by_id(result.run_id)
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        for name in SUBSET:
            event = instance.get_latest_materialization_event(dg.AssetKey(name))
            assert event is not None and event.run_id == result.run_id, name
        check_keys = [key for key in defs.resolve_asset_graph().asset_check_keys if key.asset_key.path[0] in SUBSET]
        assert check_keys
        for key in check_keys:
            execution = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
            assert execution.run_id == result.run_id and execution.status.value == "SUCCEEDED", key

    with psycopg2.connect(host="127.0.0.1", port=int(postgres_server["DAGSTER_PG_PORT"]), user=DB_USER,
                          dbname=DB_NAME) as con, con.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchall() == [("SUCCESS",)]
        cursor.execute(
            "SELECT DISTINCT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (result.run_id,),
        )
        assert {row[0] for row in cursor.fetchall()} == {dg.AssetKey(name).to_string() for name in SUBSET}
        cursor.execute("SELECT count(*) FROM asset_check_executions WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchone()[0] == len(check_keys)
        # The pool slot the DuckDB writers shared lives in PostgreSQL too, with the limit from deploy/dagster.yaml.
        cursor.execute('SELECT "limit" FROM concurrency_limits WHERE concurrency_key = %s', ("duckdb",))
        assert cursor.fetchall() == [(1,)]
    con.close()
