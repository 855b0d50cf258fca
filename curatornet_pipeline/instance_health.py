"""Runs whose process died, and the pool slots they still hold.

A run executed in-process (``curatornet materialize``, a run worker launched by the UI) claims the one
``duckdb`` pool slot for each DuckDB-writing step and frees it when the step ends. If the process is killed
(``kill -9``, out of memory) Dagster's record keeps saying the run is STARTED and the slot claimed, and every
later run waits for that slot forever: no daemon watches a run that was not launched by the daemon.

So every run records which process executes it (pid, host, and the process's start time, so a recycled pid
is not mistaken for it) in its tags, and before a run starts, and while a run waits for a slot, runs whose
recorded process is gone are marked failed and their slots freed. Runs on another host, or without the
tags, are never touched automatically: ``curatornet doctor`` lists them and ``curatornet unlock --run-id``
clears one on request.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

PID_TAG = "curatornet/pid"
HOST_TAG = "curatornet/host"
PROCESS_START_TAG = "curatornet/process_start"
DUCKDB_POOL = "duckdb"

UNFINISHED = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _process_start(pid: int) -> str | None:
    """Boot id plus start time (clock ticks since boot) of ``pid``: unique per process across pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    return f"{boot}:{stat[stat.rindex(')') + 2 :].split()[19]}"


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] == "Z"


def this_process_tags() -> dict[str, str]:
    """The tags that name the current process as the one executing a run."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    started = _process_start(os.getpid())
    if started:
        tags[PROCESS_START_TAG] = started
    return tags


def recorded_process_alive(tags: dict[str, str]) -> bool | None:
    """True/False when the run's recorded process is alive/gone; None when that cannot be known here."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _is_zombie(pid):
        return False
    recorded, current = tags.get(PROCESS_START_TAG), _process_start(pid)
    return not (recorded and current and recorded != current)


def describe_process(tags: dict[str, str]) -> str:
    if PID_TAG not in tags:
        return "no process recorded"
    return f"pid {tags[PID_TAG]} on {tags.get(HOST_TAG, '?')}"


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str
    process: str
    alive: bool | None
    held_slots: tuple[str, ...]  # "pool/step_key"


@dataclass(frozen=True)
class SlotHolder:
    pool: str
    run_id: str
    step_key: str
    run_status: str | None  # None: no run with that id in this instance
    process: str
    alive: bool | None


def slot_holders(instance: dg.DagsterInstance, pool: str | None = None) -> list[SlotHolder]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    pools = [pool] if pool else sorted(storage.get_concurrency_keys())
    holders = []
    for name in pools:
        for slot in storage.get_concurrency_info(name).claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            tags = dict(run.tags) if run else {}
            holders.append(
                SlotHolder(
                    name,
                    slot.run_id,
                    slot.step_key,
                    run.status.value if run else None,
                    describe_process(tags),
                    recorded_process_alive(tags) if run and not run.is_finished else (False if run else None),
                )
            )
    return holders


def unfinished_runs(instance: dg.DagsterInstance) -> list[RunState]:
    held: dict[str, list[str]] = {}
    for holder in slot_holders(instance):
        held.setdefault(holder.run_id, []).append(f"{holder.pool}/{holder.step_key}")
    return [
        RunState(
            run.run_id,
            run.status.value,
            describe_process(dict(run.tags)),
            recorded_process_alive(dict(run.tags)),
            tuple(held.get(run.run_id, ())),
        )
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))
    ]


def release_run(instance: dg.DagsterInstance, run_id: str, reason: str) -> None:
    """Mark ``run_id`` failed (if it is not finished) with ``reason``, and free every pool slot it holds."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message=reason)
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail the runs whose recorded process is gone and free slots held by finished runs; the messages say which."""
    done = []
    for state in unfinished_runs(instance):
        if state.alive is False:
            release_run(
                instance,
                state.run_id,
                f"the process that ran this run ({state.process}) is gone (killed?); marked failed and its "
                "pool slots freed so later runs can proceed",
            )
            done.append(f"run {state.run_id} ({state.process}) had died: marked failed, pool slots freed")
    for holder in slot_holders(instance):
        if holder.run_status is not None and holder.alive is False:
            # A finished run whose slot was never released (its process ended before freeing it).
            instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
            done.append(f"run {holder.run_id} ({holder.run_status}) still held {holder.pool}/{holder.step_key}: freed")
    return done


@contextlib.contextmanager
def instance_init_lock(dagster_home: Path) -> Iterator[None]:
    """Serialise first-time creation of the instance's SQLite storage between processes sharing a home."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    with open(dagster_home / ".curatornet_instance.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_instance() -> dg.DagsterInstance:
    """The DAGSTER_HOME instance (storage created under a file lock), or an ephemeral one when it is unset."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    with instance_init_lock(Path(home)):
        instance = dg.DagsterInstance.get()
        # Touching each storage creates its tables now, inside the lock, rather than lazily and concurrently.
        instance.run_storage.get_run_records(limit=1)
        instance.event_log_storage.get_concurrency_keys()
        instance.schedule_storage  # noqa: B018 (created on access)
    return instance
