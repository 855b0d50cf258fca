"""Wall time of `make run`, per stage: the whole pipeline as `make run` runs it, on a fresh instance.

Runs ``curatornet materialize`` (the command `make run` runs) in a subprocess, with default settings, in a
fresh temporary data folder and DAGSTER_HOME (a copy of the project's .dagster_home/dagster.yaml), then
reads Dagster's step events from that instance: one row per step (asset or check) with its start, its end
and its wall time, in the order the in-process executor ran them. The CuratorNet models' per-epoch training
throughput (model.training_history) is reported too, since training is most of the run.

Prints JSON, then a markdown table; ``--json``/``--markdown`` also write them to files.

    python benchmarks/bench_make_run.py [--scale paper|small|tiny] [--config run.yaml] [--env NAME=VALUE] [--keep DIR]
                                        [--json out.json] [--markdown out.md]

The machine and its load (1-minute load average before and after) are part of the output: on a machine
shared with other work the absolute times are inflated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def run_pipeline(work: Path, scale: str, config: Path | None, extra_env: dict[str, str]) -> tuple[float, str, int]:
    """Run `curatornet materialize` under ``work``; (wall seconds, its output, exit code)."""
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CURATORNET_")}
    env.update(DAGSTER_HOME=str(home), CURATORNET_DATA_DIR=str(work / "data"), PYTHONUNBUFFERED="1")
    if scale != "paper":
        env["CURATORNET_DEMO_SCALE"] = scale
    env.update(extra_env)
    command = [str(VENV_BIN / "curatornet"), "materialize"] + (["--config", str(config.resolve())] if config else [])
    started = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return time.perf_counter() - started, proc.stdout, proc.returncode


def step_times(home: Path) -> tuple[str, list[dict]]:
    """(run id, one row per step: key, start offset from the run's start, seconds, status)."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs(limit=1)
        wanted = {
            dg.DagsterEventType.RUN_START,
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        }
        records = [r for r in instance.all_logs(run.run_id) if r.dagster_event and r.dagster_event_type in wanted]
    run_start = min(r.timestamp for r in records)
    started: dict[str, float] = {}
    rows = []
    for record in sorted(records, key=lambda r: r.timestamp):
        step = record.dagster_event.step_key
        if record.dagster_event_type == dg.DagsterEventType.STEP_START:
            started[step] = record.timestamp
        elif step in started:
            rows.append(
                {
                    "step": step,
                    "start_s": round(started[step] - run_start, 2),
                    "seconds": round(record.timestamp - started[step], 2),
                    "status": "success" if record.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS else "failure",
                }
            )
    return run.run_id, sorted(rows, key=lambda row: row["start_s"])


def training_throughput(database: Path) -> list[dict]:
    """Per CuratorNet model: epochs, mean and slowest epoch's training triplets/s (from model.training_history)."""
    import duckdb

    if not database.exists():
        return []
    with duckdb.connect(str(database), read_only=True) as con:
        try:
            frame = con.execute(
                """
                SELECT model_id, count(*) AS epochs, round(sum(seconds), 1) AS seconds,
                       round(avg(triplets_per_second)) AS mean_triplets_per_s,
                       round(min(triplets_per_second)) AS slowest_epoch_triplets_per_s
                FROM model.training_history GROUP BY model_id ORDER BY model_id
                """
            ).df()
        except duckdb.CatalogException:
            return []
    return frame.to_dict(orient="records")


def markdown(report: dict) -> str:
    lines = [
        f"`make run` ({report['scale']} scale, config: {report['config']}, extra environment: {report['extra_env'] or 'none'}) "
        f"on {report['machine']}: {report['total_seconds']:.0f} s in total "
        f"({report['steps_seconds']:.0f} s in steps), 1-min load average {report['load_before']:.2f} before, "
        f"{report['load_after']:.2f} after.",
        "",
        "| step | starts at (s) | seconds | share |",
        "|---|---:|---:|---:|",
    ]
    for row in sorted(report["steps"], key=lambda r: -r["seconds"]):
        share = row["seconds"] / report["total_seconds"]
        lines.append(f"| {row['step']} | {row['start_s']:.0f} | {row['seconds']:.1f} | {share:.0%} |")
    if report["training"]:
        lines += ["", "| model | epochs | seconds | mean triplets/s | slowest epoch triplets/s |", "|---|---:|---:|---:|---:|"]
        for row in report["training"]:
            lines.append(
                f"| {row['model_id']} | {row['epochs']} | {row['seconds']:.0f} | {row['mean_triplets_per_s']:.0f} "
                f"| {row['slowest_epoch_triplets_per_s']:.0f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="paper", choices=["paper", "small", "tiny"], help="demo gallery scale")
    parser.add_argument("--config", type=Path, help="run config YAML passed to `curatornet materialize --config`")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="extra environment of the run, e.g. OMP_WAIT_POLICY= for OpenMP's default (spinning) wait policy",
    )
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it, instead of a temp folder")
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    parser.add_argument("--markdown", type=Path, help="also write the markdown table here")
    args = parser.parse_args()

    extra_env = dict(item.split("=", 1) for item in args.env)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_make_run_"))
    load_before = os.getloadavg()[0]
    try:
        total, output, code = run_pipeline(work, args.scale, args.config, extra_env)
        if code != 0:
            print(output[-6000:], file=sys.stderr)
            print(f"curatornet materialize failed with exit code {code}", file=sys.stderr)
            return 1
        run_id, steps = step_times(work / "dagster_home")
        report = {
            "scale": args.scale,
            "config": str(args.config) if args.config else "defaults",
            "extra_env": extra_env,
            "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.processor() or platform.platform()}",
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "run_id": run_id,
            "total_seconds": round(total, 1),
            "steps_seconds": round(sum(row["seconds"] for row in steps), 1),
            "steps": steps,
            "training": training_throughput(work / "data" / "curatornet.duckdb"),
        }
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    text = markdown(report)
    print(json.dumps(report, indent=2))
    print()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
