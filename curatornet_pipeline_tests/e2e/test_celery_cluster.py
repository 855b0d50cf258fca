"""The whole graph on Dagster's celery executor: a real Redis and two real celery workers on this machine.

This is the cluster profile of docs/deployment.md at the size of one machine: `redis-server` (Debian's package;
.ci/run installs it) on a free loopback port, two workers started with deploy/celery/start_worker.sh, and
`curatornet materialize` with CURATORNET_EXECUTOR=celery as the launching process. The run must succeed, its
steps must have run in both workers, and its tables must equal those of an in-process run of the same seed.
Then the process running a training step is killed with SIGKILL: the step must run again in a live worker
process and the run succeed with the same tables. Every process the tests start is stopped by its session id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from curatornet_pipeline_tests.support.processes import (
    REPO_ROOT,
    VENV_BIN,
    log_tail,
    make_dagster_home,
    pipeline_env,
    start_in_new_session,
    stop_session,
)
from curatornet_pipeline_tests.support.cluster import (
    REDIS_SERVER,
    celery_step_starts,
    descendants,
    pool_process,
    start_redis,
    start_worker,
    wait_for_line,
)
from curatornet_pipeline_tests.support.tiny import tiny_run_config

WORKERS = ("worker-a", "worker-b")
TRAINING_STEP = "curatornet_model"
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


def table_rows(database: Path, table: str, order: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def worker_of_each_step(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """Step key -> the celery worker that ran it."""
    return dict(celery_step_starts(instance, run_id))


def run_cli(env: dict[str, str], config: Path, log: Path, deadline_s: float) -> None:
    command = [str(VENV_BIN / "curatornet"), "materialize", "--config", str(config)]
    with log.open("wb") as out:
        finished = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=deadline_s)
    assert finished.returncode == 0, log_tail(log)


@dataclass
class Cluster:
    env: dict[str, str]
    home: Path
    data_dir: Path
    folder: Path
    workers: dict[str, subprocess.Popen]
    config: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A Redis server and two celery workers on loopback, with the instance and data folder they share."""
    folder = tmp_path_factory.mktemp("cluster")
    config = folder / "tiny.yaml"
    run_config = tiny_run_config()
    run_config.pop("loggers", None)
    config.write_text(yaml.safe_dump(run_config))
    home = make_dagster_home(folder / "dagster_home")
    data_dir = folder / "data"
    # Create the instance's storage once, before processes that open it start together (two that create the
    # SQLite schema at the same moment both stamp its version); a cluster's PostgreSQL instance is created once too.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs()
    started: list[subprocess.Popen] = []
    try:
        redis, broker, _ = start_redis(folder)
        started.append(redis)
        env = pipeline_env(home, data_dir, CURATORNET_EXECUTOR="celery", CURATORNET_CELERY_BROKER=broker)
        # `dagster-celery worker start` runs the `celery` program of this environment.
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        workers = {}
        for name in WORKERS:
            workers[name], log = start_worker(name, env, folder)
            started.append(workers[name])
        for name, proc in workers.items():
            wait_for_line(proc, folder / f"{name}.log", f"{name}@", READY_DEADLINE_S)
            wait_for_line(proc, folder / f"{name}.log", "ready.", READY_DEADLINE_S)
        yield Cluster(env, home, data_dir, folder, workers, config)
    finally:
        leftovers = [pid for proc in reversed(started) for pid in stop_session(proc, grace_seconds=20)]
        assert leftovers == [], f"processes outlived their shutdown: {leftovers}"


def test_the_graph_runs_on_two_celery_workers_and_matches_an_in_process_run(cluster, tmp_path):
    # The same seed and settings in one process: the reference tables.
    reference_dir = tmp_path / "reference"
    reference_env = pipeline_env(make_dagster_home(tmp_path / "reference_home"), reference_dir)
    run_cli(reference_env, cluster.config, tmp_path / "reference.log", RUN_DEADLINE_S)

    run_cli(cluster.env, cluster.config, cluster.folder / "celery_run.log", RUN_DEADLINE_S)

    with dg.DagsterInstance.from_config(str(cluster.home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        workers_by_step = worker_of_each_step(instance, run.run_id)
    assert {"raw_tables", "curatornet_model", "evaluate"} <= set(workers_by_step), sorted(workers_by_step)
    assert {hostname.split("@")[0] for hostname in workers_by_step.values()} == set(WORKERS), workers_by_step

    for table, order in COMPARED_TABLES.items():
        assert table_rows(cluster.data_dir / "curatornet.duckdb", table, order) == table_rows(
            reference_dir / "curatornet.duckdb", table, order
        ), table


def newest_run_id(instance: dg.DagsterInstance) -> str | None:
    runs = instance.get_runs(limit=1)
    return runs[0].run_id if runs else None


def executions_of(instance: dg.DagsterInstance, run_id: str, step_key: str) -> list[str]:
    """The workers that started ``step_key`` in ``run_id``, once per start."""
    return [worker for step, worker in celery_step_starts(instance, run_id) if step == step_key]


def test_a_step_whose_worker_process_is_killed_runs_again_and_the_run_succeeds(cluster):
    database = cluster.data_dir / "curatornet.duckdb"
    if not database.exists():
        run_cli(cluster.env, cluster.config, cluster.folder / "first_run.log", RUN_DEADLINE_S)
    before = {table: table_rows(database, table, order) for table, order in COMPARED_TABLES.items()}
    with dg.DagsterInstance.from_config(str(cluster.home)) as instance:
        previous_run = newest_run_id(instance)
        log = cluster.folder / "killed_run.log"
        command = [str(VENV_BIN / "curatornet"), "materialize", "--config", str(cluster.config)]
        launcher = start_in_new_session(command, cluster.env, log)
        orphans: list[int] = []
        try:
            deadline = time.monotonic() + RUN_DEADLINE_S
            while True:
                assert launcher.poll() is None, f"the run ended before its training step started:\n{log_tail(log)}"
                assert time.monotonic() < deadline, f"no training step after {RUN_DEADLINE_S} s:\n{log_tail(log)}"
                run_id = newest_run_id(instance)
                if run_id != previous_run and executions_of(instance, run_id, TRAINING_STEP):
                    break
                time.sleep(0.1)
            [worker] = executions_of(instance, run_id, TRAINING_STEP)
            worker_session = cluster.workers[worker.split("@")[0]].pid
            victim = pool_process(worker_session)
            # The step's own helpers (Dagster's log capture: `tail -F` of the step's log) outlive a SIGKILL of
            # their parent, as they would the OOM killer's; they belong to the killed step, not to the shutdown.
            orphans = descendants(victim, worker_session)
            os.kill(victim, signal.SIGKILL)
            assert launcher.wait(timeout=RUN_DEADLINE_S) == 0, log_tail(log)
        finally:
            stop_session(launcher, grace_seconds=20)
            for pid in orphans:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        # The step started twice: in the killed process, then again in a live one.
        assert len(executions_of(instance, run_id, TRAINING_STEP)) == 2
    assert "WorkerLostError" in log_tail(cluster.folder / f"{worker.split('@')[0]}.log", chars=1_000_000)
    # The same seed on the same data: the tables are the ones the previous run left.
    assert {table: table_rows(database, table, order) for table, order in COMPARED_TABLES.items()} == before
