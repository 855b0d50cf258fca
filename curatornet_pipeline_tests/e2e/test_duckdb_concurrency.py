"""Two runs that write the same DuckDB file at the same time both succeed.

DuckDB admits one writing process per database file; a second process that opens it gets a lock error.
Runs overlap in real use (the daily schedule tick while someone launches a run from the UI, or the source
sensor firing during a manual run), so the project must serialize the writers itself.

What guarantees it, and what this test exercises for real:

- Every asset that writes the DuckDB file declares ``pool="duckdb"``, and the project's instance file
  (``.dagster_home/dagster.yaml``, copied here unchanged) sets ``concurrency: pools: default_limit: 1``, so
  the ``duckdb`` pool has one slot. Slots are rows in the instance's storage, shared by every process that
  uses the same DAGSTER_HOME.
- Both of Dagster's local executors honour pools: ``in_process.py`` and ``multiprocess.py`` (dagster 1.13)
  wrap the plan in an ``InstanceConcurrencyContext``, and ``ActiveExecution`` hands a pooled step to the
  executor only once ``claim()`` got the slot; the slot is freed when the step ends. ``granularity`` is
  unset, so enforcement is per step (op), as the code requires (``claim`` returns early only for ``run``).
- Each run is its own ``dagster asset materialize`` process (two processes opening the same file — exactly
  the case the file lock rejects). The code location uses the in-process executor (a step subprocess per
  step would cost a fresh import of torch each on two cores); the pool mechanism is the same code path for
  both executors.
- Asset checks that open DuckDB are in the pool too, so a check of one run never opens the file while
  the other run writes it.

The test holds the pool's only slot itself, starts two ``dagster asset materialize`` processes together,
waits until BOTH runs queue a step on the pool (so they really overlap, and neither has created the DuckDB
file), releases the slot, and then requires both runs to succeed, with the pooled steps of the two runs
executing one after the other, never interleaved.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline_tests.support.tiny import tiny_resources
from curatornet_pipeline_tests.support.processes import (
    VENV_BIN,
    log_tail,
    make_dagster_home,
    pipeline_env,
    start_in_new_session,
    stop_session,
)

POOL = "duckdb"
# Cheap assets that still write DuckDB from two different steps (ingest, then the split).
SELECTION = ["source_files", "raw_artworks", "raw_transactions", "last_basket_split"]
HOLDER_RUN, HOLDER_STEP = "test-holds-the-duckdb-slot", "held_by_the_test"
# Two processes that each import dagster and torch on two cores that may be shared with other work.
BLOCKED_DEADLINE_S = 300
FINISH_DEADLINE_S = 420


def pooled_step_keys(tmp_path: Path) -> set[str]:
    """Step keys (op names) of the asset and check ops that declare the duckdb pool."""
    job = build_definitions(tiny_resources(tmp_path)).resolve_implicit_global_asset_job_def()
    return {node.name for node in job.graph.nodes if node.definition.pool == POOL}


def step_windows(instance: dg.DagsterInstance, run_id: str, keys: set[str]) -> dict[str, tuple[float, float]]:
    """(start, end) timestamps of the steps ``keys`` that ran in ``run_id``."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for event in instance.all_logs(run_id):
        if event.step_key not in keys or event.dagster_event is None:
            continue
        if event.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = event.timestamp
        elif event.dagster_event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = event.timestamp
    return {key: (starts[key], ends[key]) for key in starts}


def waiting_runs(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(POOL)
    return {step.run_id for step in info.pending_steps if step.run_id != HOLDER_RUN and step.assigned_timestamp is None}


@pytest.mark.slow
def test_two_simultaneous_runs_share_the_duckdb_file(tmp_path, monkeypatch):
    home = make_dagster_home(tmp_path / "dagster_home")
    data_dir = tmp_path / "data"
    database = data_dir / "curatornet.duckdb"
    env = pipeline_env(home, data_dir)
    # Both runs find the demo gallery already written, as on any machine after its first run.
    stats = GallerySource(data_dir=str(data_dir), demo_scale="tiny").ensure_demo_gallery()
    pooled = pooled_step_keys(tmp_path)
    writers = {"raw_tables", "last_basket_split"}
    assert writers <= pooled, "the DuckDB-writing assets must be in the duckdb pool"

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    procs: list[subprocess.Popen] = []
    logs = [tmp_path / f"run_{i}.log" for i in range(2)]
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert storage.supports_global_concurrency_limits
        storage.initialize_concurrency_limit_to_default(POOL)
        assert storage.get_concurrency_info(POOL).limit == 1, "dagster.yaml must give the duckdb pool one slot"
        assert storage.claim_concurrency_slot(POOL, HOLDER_RUN, HOLDER_STEP).is_claimed
        try:
            command = [str(VENV_BIN / "dagster"), "asset", "materialize", "-m", "curatornet_pipeline.definitions",
                       "--select", ",".join(SELECTION), ]
            procs = [start_in_new_session(command, env, log) for log in logs]

            deadline = time.monotonic() + BLOCKED_DEADLINE_S
            while len(waiting_runs(instance)) < 2:
                for proc, log in zip(procs, logs):
                    assert proc.poll() is None, f"a run ended while the pool slot was held:\n{log_tail(log)}"
                assert time.monotonic() < deadline, (
                    f"runs did not both queue on the duckdb pool within {BLOCKED_DEADLINE_S}s:\n"
                    + "\n----\n".join(log_tail(log) for log in logs)
                )
                time.sleep(0.5)
            # Both runs are live and waiting; no writer has touched the database yet.
            assert not database.exists()
        finally:
            storage.free_concurrency_slot_for_step(HOLDER_RUN, HOLDER_STEP)

        finish_deadline = time.monotonic() + FINISH_DEADLINE_S
        try:
            for proc, log in zip(procs, logs):
                return_code = proc.wait(timeout=max(1.0, finish_deadline - time.monotonic()))
                assert return_code == 0, f"run process failed:\n{log_tail(log)}"
        finally:
            leftovers = [pid for proc in procs for pid in stop_session(proc, grace_seconds=5)]
        assert leftovers == []

        runs = instance.get_runs()
        assert len(runs) == 2
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        windows = []
        for run in runs:
            run_windows = step_windows(instance, run.run_id, pooled)
            assert writers <= set(run_windows), f"run {run.run_id} ran only {sorted(run_windows)} of the pool"
            windows.extend(run_windows.values())
        windows.sort()
        for (_, previous_end), (next_start, _) in zip(windows, windows[1:]):
            assert next_start >= previous_end, f"two DuckDB-writing steps overlapped: {windows}"

    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ingest.raw_artworks").fetchone()[0] == stats["generated"]["n_artworks"]
        assert con.execute("SELECT count(*) FROM split.last_basket_split").fetchone()[0] > 0
