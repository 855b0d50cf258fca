"""A killed run never blocks the next one, and Ctrl-C/SIGTERM always stop `curatornet materialize`.

Real processes only: `curatornet materialize` runs as a subprocess against its own DAGSTER_HOME (the
project's dagster.yaml, so the `duckdb` pool has one slot), is killed with SIGKILL while it trains, and a
second run in the same home must then finish. The interrupt tests hold the pool slot from the test, wait
until the run says it is waiting for it, and then signal it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from curatornet_pipeline.cli import main
from curatornet_pipeline.instance_health import DUCKDB_POOL, PID_TAG, slot_holders
from curatornet_pipeline_tests.support.tiny import TINY_OPS_CONFIG
from curatornet_pipeline_tests.support.processes import (
    VENV_BIN,
    log_tail,
    make_dagster_home,
    pipeline_env,
    start_in_new_session,
    stop_session,
)

HOLDER_RUN, HOLDER_STEP = "test-holds-the-duckdb-slot", "held_by_the_test"


def write_config(path: Path, **model_config) -> Path:
    ops = {op: {"config": dict(entry["config"])} for op, entry in TINY_OPS_CONFIG.items()}
    ops["curatornet_model"]["config"].update(model_config)
    path.write_text(yaml.safe_dump({"ops": ops}))
    return path


def wait_for_text(proc: subprocess.Popen, log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"process ended before printing {text!r}:\n{log_tail(log)}"
        assert time.monotonic() < deadline, f"no {text!r} within {timeout}s:\n{log_tail(log)}"
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def home_and_env(tmp_path, monkeypatch):
    home = make_dagster_home(tmp_path / "dagster_home")
    env = pipeline_env(home, tmp_path / "data")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home, env


def materialize_command(config: Path) -> list[str]:
    return [str(VENV_BIN / "curatornet"), "materialize", "--config", str(config)]


@pytest.mark.slow
def test_a_run_killed_while_training_does_not_block_the_next_run(tmp_path, home_and_env, capsys):
    home, env = home_and_env
    long_config = write_config(tmp_path / "long.yaml", max_epochs=100000)
    killed_log, next_log = tmp_path / "killed.log", tmp_path / "next.log"

    killed = start_in_new_session(materialize_command(long_config), env, killed_log)
    try:
        wait_for_text(killed, killed_log, "epoch 3/100000", timeout=240)  # CuratorNet's own epochs
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
    finally:
        stop_session(killed, grace_seconds=5)

    with dg.DagsterInstance.get() as instance:
        (dead_run,) = instance.get_runs()
        assert dead_run.status == dg.DagsterRunStatus.STARTED
        assert [h.step_key for h in slot_holders(instance, DUCKDB_POOL)] == ["curatornet_model"]
    assert main(["doctor", "--database", str(tmp_path / "data" / "curatornet.duckdb")]) == 1
    report = capsys.readouterr().out
    assert f"run {dead_run.run_id}: STARTED, process pid {killed.pid}" in report and "GONE" in report
    assert "holds duckdb/curatornet_model" in report and "is whole" in report

    follow_up = start_in_new_session(materialize_command(write_config(tmp_path / "short.yaml")), env, next_log)
    try:
        assert follow_up.wait(timeout=300) == 0, log_tail(next_log)
    finally:
        stop_session(follow_up, grace_seconds=5)
    assert f"run {dead_run.run_id}" in next_log.read_text() and "had died" in next_log.read_text()

    with dg.DagsterInstance.get() as instance:
        statuses = {run.run_id: run.status for run in instance.get_runs()}
        assert statuses[dead_run.run_id] == dg.DagsterRunStatus.FAILURE
        assert sorted(s.value for s in statuses.values()) == ["FAILURE", "SUCCESS"]
        assert slot_holders(instance) == []
        failure = instance.get_records_for_run(
            dead_run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records[0].event_log_entry
        assert "is gone" in failure.dagster_event.message


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_run_waiting_for_the_pool_slot_says_who_holds_it_and_stops_on_a_signal(tmp_path, home_and_env, signum):
    home, env = home_and_env
    log = tmp_path / "waiting.log"
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        assert storage.claim_concurrency_slot(DUCKDB_POOL, HOLDER_RUN, HOLDER_STEP).is_claimed
        proc = start_in_new_session(materialize_command(write_config(tmp_path / "short.yaml")), env, log)
        try:
            wait_for_text(proc, log, "waits for the 'duckdb' pool slot", timeout=180)
            assert HOLDER_RUN in log.read_text()
            # Waiting must not spin a core (Dagster's own loop never sleeps).
            before, started = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(2.0)
            assert (cpu_seconds(proc.pid) - before) / (time.monotonic() - started) < 0.5

            os.kill(proc.pid, signum)
            sent = time.monotonic()
            return_code = proc.wait(timeout=15)
            stopped_after = time.monotonic() - sent
        finally:
            leftovers = stop_session(proc, grace_seconds=5)
            storage.free_concurrency_slot_for_step(HOLDER_RUN, HOLDER_STEP)
        assert return_code == 130, log_tail(log)
        assert stopped_after < 10
        assert leftovers == []
        assert "interrupted" in log.read_text()
        (run,) = instance.get_runs()
        assert run.is_finished and run.tags[PID_TAG] == str(proc.pid)
        # Its pending claim is withdrawn: only the test's own slot was ever claimed.
        assert storage.get_concurrency_info(DUCKDB_POOL).pending_steps == []


FIRST_USE = """
import sys, time
from curatornet_pipeline.cli import main
from curatornet_pipeline.instance_health import open_instance
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # every process reaches this line at the same instant
with open_instance() as instance:
    print("runs:", len(instance.get_runs()))
"""


def test_first_use_of_a_fresh_shared_instance_by_several_processes_at_once(tmp_path):
    """Without the init lock, Dagster's SQLite run storage races ('table ... already exists') on a fresh home."""
    home = make_dagster_home(tmp_path / "dagster_home")
    env = pipeline_env(home, tmp_path / "data")
    logs = [tmp_path / f"first_use_{i}.log" for i in range(4)]
    start_at = str(time.time() + 8)  # after every interpreter has imported dagster
    procs = [
        start_in_new_session([str(VENV_BIN / "python"), "-c", FIRST_USE, start_at], env, log) for log in logs
    ]
    try:
        codes = [proc.wait(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            stop_session(proc, grace_seconds=5)
    for code, log in zip(codes, logs):
        assert code == 0 and "runs: 0" in log.read_text(), log_tail(log)
    done = subprocess.run(
        [str(VENV_BIN / "curatornet"), "doctor"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr


def test_unlock_frees_the_slot_of_a_named_run_and_doctor_reports_it(tmp_path, home_and_env, capsys):
    """A slot held by a run the instance does not know (e.g. from before the pid tags) is freed on request."""
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        assert storage.claim_concurrency_slot(DUCKDB_POOL, HOLDER_RUN, HOLDER_STEP).is_claimed
        assert main(["doctor", "--database", str(tmp_path / "none.duckdb")]) == 0
        assert f"pool slot duckdb/{HOLDER_STEP} held by unknown run {HOLDER_RUN}" in capsys.readouterr().out
        assert main(["unlock"]) == 0  # without --run-id only runs known to be dead are released
        assert [h.run_id for h in slot_holders(instance)] == [HOLDER_RUN]
        assert main(["unlock", "--run-id", HOLDER_RUN]) == 0
        assert slot_holders(instance) == []
