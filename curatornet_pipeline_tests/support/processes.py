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


def _default_interrupt_handling() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and the children inherit
    # that: `make test &` in a script, or a CI runner that does so, would hand `dagster dev` and the celery
    # workers a Ctrl-C they never see (Python keeps an ignored SIGINT ignored). A server must get the Ctrl-C a
    # user's terminal would give it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_in_new_session(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``args`` from the repository root in a session of its own, output to ``log``, Ctrl-C as in a terminal."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_default_interrupt_handling,
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


def listening_pid(port: int, candidates: list[int]) -> int | None:
    """The pid among ``candidates`` that owns the socket listening on 127.0.0.1:``port``, if one does.

    A port taken from free_port() can be grabbed by another program before our server binds it (other
    test runs share the machine); a readiness poll must not mistake that program for our server.
    """
    wanted = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # local address, state LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for pid in candidates:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


def _wait_until_gone(session_id: int, proc: subprocess.Popen, seconds: float) -> list[int]:
    """Reap ``proc`` and wait up to ``seconds`` for every member of ``session_id`` to exit; the live ones left."""
    deadline = time.monotonic() + seconds
    while True:
        proc.poll()
        members = session_members(session_id)
        if not members or time.monotonic() >= deadline:
            return members
        time.sleep(0.5)


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def describe_processes(pids: list[int]) -> str:
    """What each live pid is: command line, state and (with py-spy, a test dependency) its Python stacks.

    Printed when processes outlive a shutdown, so a failure in CI says which process hung and where.
    """
    lines = []
    spy = shutil.which("py-spy", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for pid in pids:
        proc_dir = Path(f"/proc/{pid}")
        try:
            command = proc_dir.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(line for line in proc_dir.joinpath("status").read_text().splitlines() if line.startswith("State"))
        except (OSError, StopIteration):
            continue
        lines.append(f"pid {pid} ({state}): {command[:300]}")
        if spy:
            dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
            lines.append(dump.stdout[-4000:])
    return "\n".join(lines)


def stop_session(proc: subprocess.Popen, grace_seconds: float = 120.0, leader_signal: int = signal.SIGINT) -> list[int]:
    """Stop ``proc`` (started with start_new_session) the way a user does, then make sure its session is gone.

    Only the session leader gets ``leader_signal`` (SIGINT, i.e. Ctrl-C, by default): `dagster dev` handles it
    (SIGTERM too) by telling its webserver and daemon to shut down, and they stop their code servers and run
    workers. Signalling every member at once instead races that orderly shutdown: a code server that exits
    first is restarted by the webserver's proxy, and the restarted one is never told to stop.
    Waits up to ``grace_seconds`` for the leader and then every member of its session to exit (dagster dev
    itself allows each child 60 s before killing it); whatever is still alive then is SIGTERMed, then
    SIGKILLed. Returns the pids that outlived the grace period; an orderly shutdown returns [].
    """
    session_id = proc.pid
    if proc.poll() is None:
        _signal_all([proc.pid], leader_signal)
    stragglers = _wait_until_gone(session_id, proc, grace_seconds)
    if stragglers:
        # pytest shows a failing test's captured output: this names the processes that hung, before they die.
        print(f"still alive {grace_seconds:.0f} s after the leader's signal:\n{describe_processes(stragglers)}")
        _signal_all(stragglers, signal.SIGTERM)
        _signal_all(_wait_until_gone(session_id, proc, 10), signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    return stragglers


def log_tail(log: Path, chars: int = 6000) -> str:
    text = log.read_text(errors="replace") if log.exists() else "<no output>"
    return text[-chars:]
