"""A celery cluster on loopback for tests and benchmarks: Debian's redis-server and deploy/celery workers."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from curatornet_pipeline_tests.support.processes import (
    REPO_ROOT,
    free_port,
    log_tail,
    session_members,
    start_in_new_session,
)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def celery_step_starts(instance, run_id: str) -> list[tuple[str, str]]:
    """(step key, celery worker) for every start of a step in ``run_id``, in order, from the engine event the
    worker records when it takes the step (a step run again after its worker process died appears twice)."""
    import dagster as dg

    starts = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.engine_event_data.metadata or {}
        if "Celery worker" in metadata and record.step_key:
            starts.append((record.step_key, metadata["Celery worker"].value))
    return starts


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


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def descendants(pid: int, session_id: int) -> list[int]:
    """The processes of ``session_id`` below ``pid`` (children, their children, ...)."""
    members = session_members(session_id)
    parents = {member: _parent(member) for member in members}
    found, frontier = [], {pid}
    while frontier:
        frontier = {member for member, parent in parents.items() if parent in frontier}
        found.extend(sorted(frontier))
    return found


def pool_process(session_id: int) -> int:
    """The process of a worker that executes its tasks: `dagster-celery` (the session leader) starts `celery`,
    whose prefork pool process (concurrency 1) runs the step; the step's own helpers (log capture) are below it."""
    members = session_members(session_id)
    parent = {pid: _parent(pid) for pid in members}
    [celery_main] = [pid for pid in members if parent[pid] == session_id]
    [pool] = [pid for pid in members if parent[pid] == celery_main]
    return pool
