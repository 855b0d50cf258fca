"""The whole graph on the tiny (or small) demo gallery under each executor, side by side in one script.

For each executor in ``--executors`` (default: in_process, multiprocess, celery), one fresh data folder and
instance, `curatornet materialize` with ``CURATORNET_EXECUTOR`` set, wall time measured around the command.
For celery the script first starts Debian's redis-server and ``--workers`` workers (deploy/celery/start_worker.sh)
on loopback and also reports the time until they were ready and how many steps each ran. Speed-ups are ratios
against in_process in the same script. Prints JSON, then a markdown table.

    python benchmarks/bench_executors.py [--scale tiny|small] [--executors in_process,celery] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curatornet_pipeline_tests.support.cluster import (  # noqa: E402
    celery_step_starts,
    start_redis,
    start_worker,
    wait_for_line,
)
from curatornet_pipeline_tests.support.processes import VENV_BIN, make_dagster_home, pipeline_env, stop_session  # noqa: E402
from curatornet_pipeline_tests.support.tiny import tiny_run_config  # noqa: E402


def materialize(env: dict[str, str], config: Path | None, log: Path) -> float:
    command = [str(VENV_BIN / "curatornet"), "materialize"] + (["--config", str(config)] if config else [])
    started = time.perf_counter()
    with log.open("wb") as out:
        finished = subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"materialize failed ({env.get('CURATORNET_EXECUTOR')}): see {log}")
    return seconds


def steps_per_worker(home: Path) -> dict[str, int]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs(limit=1)
        return dict(Counter(worker for _, worker in celery_step_starts(instance, run.run_id)))


def run_one(executor: str, scale: str, config: Path | None, folder: Path, n_workers: int) -> dict:
    home = make_dagster_home(folder / "dagster_home")
    env = pipeline_env(home, folder / "data", CURATORNET_EXECUTOR=executor, CURATORNET_DEMO_SCALE=scale)
    env.pop("OMP_NUM_THREADS")  # each process uses the cores as it would for a user
    result: dict = {"executor": executor}
    started: list[subprocess.Popen] = []
    try:
        if executor == "celery":
            with dg.DagsterInstance.from_config(str(home)) as instance:
                instance.get_runs()  # the instance's storage exists before the workers open it together
            begin = time.perf_counter()
            redis, broker, _ = start_redis(folder)
            started.append(redis)
            env.update(CURATORNET_CELERY_BROKER=broker, PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
            names = [f"worker-{i}" for i in range(1, n_workers + 1)]
            for name in names:
                proc, _ = start_worker(name, env, folder)
                started.append(proc)
            for name, proc in zip(names, started[1:]):
                wait_for_line(proc, folder / f"{name}.log", "ready.", 600)
            result["seconds_to_workers_ready"] = round(time.perf_counter() - begin, 1)
        result["run_seconds"] = round(materialize(env, config, folder / "materialize.log"), 1)
        if executor == "celery":
            result["steps_per_worker"] = steps_per_worker(home)
    finally:
        for proc in reversed(started):
            stop_session(proc, grace_seconds=20)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--executors", default="in_process,multiprocess,celery")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_executors_") as tmp:
        config = None
        if args.scale == "tiny":
            config = Path(tmp) / "tiny.yaml"
            run_config = tiny_run_config()
            run_config.pop("loggers", None)
            config.write_text(yaml.safe_dump(run_config))
        for executor in args.executors.split(","):
            folder = Path(tmp) / executor
            folder.mkdir()
            results.append(run_one(executor, args.scale, config, folder, args.workers))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    baseline = next((r["run_seconds"] for r in results if r["executor"] == "in_process"), None)
    for r in results:
        if baseline:
            r["time_vs_in_process"] = round(r["run_seconds"] / baseline, 2)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "scale": args.scale,
        "results": results,
    }
    print(json.dumps(report, indent=2))
    print("\n| executor | run (s) | × in_process | workers ready (s) | steps per worker |\n|---|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['executor']} | {r['run_seconds']} | {r.get('time_vs_in_process', '')} | "
            f"{r.get('seconds_to_workers_ready', '')} | {r.get('steps_per_worker', '')} |"
        )


if __name__ == "__main__":
    main()
