"""Start Dagster processes against a temporary instance and data folder, and stop every process they spawned."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT_DAGSTER_YAML = REPO_ROOT / ".dagster_home" / "dagster.yaml"
DEPLOY_DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
VENV_BIN = Path(sys.executable).parent


def make_dagster_home(home: Path, instance_yaml: Path = PROJECT_DAGSTER_YAML) -> Path:
    """A fresh DAGSTER_HOME holding a copy of ``instance_yaml`` as its dagster.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(instance_yaml, home / "dagster.yaml")
    return home


def pipeline_env(dagster_home: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a process that runs the pipeline on the tiny demo gallery under ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURATORNET_")}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        CURATORNET_DATA_DIR=str(data_dir),
        CURATORNET_SOURCE="demo",
        CURATORNET_DEMO_SCALE="tiny",
        # Two cores are shared by everything the test starts; more torch threads only add contention.
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_in_new_session(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``args`` from the repository root in a session of its own, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def session_members(session_id: int) -> list[int]:
    """Pids of live processes whose session id is ``session_id`` (read from /proc; no psutil here)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ...
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of live processes whose environment has ``name=value`` (catches any that left the session)."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and wanted in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop_session(proc: subprocess.Popen, grace_seconds: float = 30.0) -> list[int]:
    """SIGTERM the whole session of ``proc`` (it was started with start_new_session), wait, then SIGKILL.

    Returns the pids that were still alive after the grace period (and had to be killed); an orderly
    shutdown returns an empty list.
    """
    session_id = proc.pid
    for pid in session_members(session_id):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if proc.poll() is None:
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
        if not session_members(session_id):
            return []
        time.sleep(0.5)
    stragglers = session_members(session_id)
    for pid in stragglers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.wait(timeout=10)
    return stragglers


def log_tail(log: Path, chars: int = 6000) -> str:
    text = log.read_text(errors="replace") if log.exists() else "<no output>"
    return text[-chars:]
