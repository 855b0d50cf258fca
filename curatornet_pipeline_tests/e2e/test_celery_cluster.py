"""The whole graph on Dagster's celery executor: a real Redis and two real celery workers on this machine.

This is the cluster profile of docs/deployment.md at the size of one machine: `redis-server` (Debian's package;
.ci/run installs it) on a free loopback port, two workers started with deploy/celery/start_worker.sh, and
`curatornet materialize` with CURATORNET_EXECUTOR=celery as the launching process. The run must succeed, its
steps must have run in both workers, and its tables must equal those of an in-process run of the same seed.
Every process the test starts is stopped by its session id.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from curatornet_pipeline_tests.support.processes import (
    REPO_ROOT,
    VENV_BIN,
    free_port,
    log_tail,
    make_dagster_home,
    pipeline_env,
    start_in_new_session,
    stop_session,
)
from curatornet_pipeline_tests.support.tiny import tiny_run_config

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
WORKERS = ("worker-a", "worker-b")
# Processes that import dagster and torch on two cores that may be shared with other work.
READY_DEADLINE_S = 180
RUN_DEADLINE_S = 900
# Tables compared between the celery run and the in-process run (ingest to evaluation).
COMPARED_TABLES = {
    "split.last_basket_split": "user_id, artwork_id, basket_id",
    "features.visual_clusters": "artwork_idx",
    "evaluation.metric_table": "method",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="needs Debian's redis-server (.ci/run installs it)"),
]


def wait_for_line(proc: subprocess.Popen, log: Path, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in log_tail(log, chars=200_000):
        assert proc.poll() is None, f"process exited before '{text}':\n{log_tail(log)}"
        assert time.monotonic() < deadline, f"no '{text}' after {seconds:.0f} s:\n{log_tail(log)}"
        time.sleep(0.5)


def start_redis(folder: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = folder / "redis.log"
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(folder)]
    proc = start_in_new_session(command, {}, log)
    wait_for_line(proc, log, "Ready to accept connections", 60)
    return proc, f"redis://127.0.0.1:{port}/0", log


def start_worker(name: str, env: dict[str, str], folder: Path) -> tuple[subprocess.Popen, Path]:
    log = folder / f"{name}.log"
    proc = start_in_new_session([str(REPO_ROOT / "deploy" / "celery" / "start_worker.sh"), name, "cpu"], env, log)
    return proc, log


def table_rows(database: Path, table: str, order: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def worker_of_each_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key -> the celery worker that ran it, from the engine event each worker records for its step."""
    workers = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.engine_event_data.metadata or {}
        if "Celery worker" in metadata and record.step_key:
            workers[record.step_key] = metadata["Celery worker"].value
    return workers


def run_cli(env: dict[str, str], config: Path, log: Path, deadline_s: float) -> None:
    command = [str(VENV_BIN / "curatornet"), "materialize", "--config", str(config)]
    with log.open("wb") as out:
        finished = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=deadline_s)
    assert finished.returncode == 0, log_tail(log)


def test_the_graph_runs_on_two_celery_workers_and_matches_an_in_process_run(tmp_path):
    config = tmp_path / "tiny.yaml"
    run_config = tiny_run_config()
    run_config.pop("loggers", None)
    config.write_text(yaml.safe_dump(run_config))

    # The same seed and settings in one process: the reference tables.
    reference_dir = tmp_path / "reference"
    reference_env = pipeline_env(make_dagster_home(tmp_path / "reference_home"), reference_dir)
    run_cli(reference_env, config, tmp_path / "reference.log", RUN_DEADLINE_S)

    home = make_dagster_home(tmp_path / "dagster_home")
    data_dir = tmp_path / "data"
    # Create the instance's storage once, before processes that open it start together (two that create the
    # SQLite schema at the same moment both stamp its version); a cluster's PostgreSQL instance is created once too.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs()
    started: list[subprocess.Popen] = []
    try:
        redis, broker, redis_log = start_redis(tmp_path)
        started.append(redis)
        env = pipeline_env(
            home, data_dir, CURATORNET_EXECUTOR="celery", CURATORNET_CELERY_BROKER=broker,
            # `dagster-celery worker start` runs the `celery` program of this environment.
            PATH=f"{VENV_BIN}:{pipeline_env(home, data_dir)['PATH']}",
        )
        workers = [start_worker(name, env, tmp_path) for name in WORKERS]
        started.extend(proc for proc, _ in workers)
        for (proc, log), name in zip(workers, WORKERS):
            wait_for_line(proc, log, f"{name}@", READY_DEADLINE_S)
            wait_for_line(proc, log, "ready.", READY_DEADLINE_S)

        run_cli(env, config, tmp_path / "celery_run.log", RUN_DEADLINE_S)
    finally:
        leftovers = [pid for proc in reversed(started) for pid in stop_session(proc, grace_seconds=20)]
    assert leftovers == [], f"processes outlived their shutdown: {leftovers}"

    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        workers_by_step = worker_of_each_step(instance, run.run_id)
    assert {"raw_tables", "curatornet_model", "evaluate"} <= set(workers_by_step), sorted(workers_by_step)
    assert {hostname.split("@")[0] for hostname in workers_by_step.values()} == set(WORKERS), workers_by_step

    for table, order in COMPARED_TABLES.items():
        assert table_rows(data_dir / "curatornet.duckdb", table, order) == table_rows(
            reference_dir / "curatornet.duckdb", table, order
        ), table
