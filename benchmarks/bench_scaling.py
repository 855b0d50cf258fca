"""How cost grows: the whole pipeline on the demo gallery at several multiples of the paper's size.

For each scale (default 0.25x, 1x, 4x: artworks, artists and users multiplied together, purchases follow)
a fresh process generates the gallery into a temporary folder and materializes every asset through the real
full-refresh Dagster job (default settings, precision auto) into a fresh DuckDB file. Per step it records the
wall time (from the run's STEP_START / STEP_SUCCESS events) and the peak resident memory of the process while
the step ran (sampled every 0.2 s from /proc). Then it fits, per step, the exponent b of seconds ~ n^b with n
the number of artworks (least squares on the log-log points; users grow in proportion, so the same b holds
for users). Prints JSON, then a markdown table.

    python benchmarks/bench_scaling.py [--scales 0.25 1 4] [--precision auto|fp32|bf16] [--quick]

``--quick`` trains on 20K triplets for 2 epochs instead of the defaults (360K, up to 25 epochs): a smoke test of
the script whose training figures are not the defaults' (every other step runs with its defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class RssSampler(threading.Thread):
    """Samples this process's resident set size every ``interval`` seconds: [(unix time, bytes)]."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.samples, self.stopped = interval, [], threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            with open("/proc/self/statm") as statm:
                self.samples.append((time.time(), int(statm.read().split()[1]) * PAGE_BYTES))
            self.stopped.wait(self.interval)


QUICK_OPS = {
    "triplets": {"config": {"total_train_triplets": 20000}},
    "random_triplets": {"config": {"total_train_triplets": 20000}},
    "curatornet_model": {"config": {"max_epochs": 2}},
    "curatornet_random_sampling_model": {"config": {"max_epochs": 2}},
    "vbpr_model": {"config": {"max_epochs": 2}},
    "vbpr_random_sampling_model": {"config": {"max_epochs": 2}},
}


def run_one(scale: float, data_dir: Path, ops: dict) -> dict:
    """Materialize everything at one scale in this process; per-step seconds and peak RSS."""
    import dagster as dg
    import duckdb

    from curatornet_pipeline.definitions import build_definitions
    from curatornet_pipeline.resources import CuratorDuckDB, GallerySource
    from curatornet_pipeline.runner import materialize_everything

    database = data_dir / "curatornet.duckdb"
    defs = build_definitions(
        {
            "duckdb": CuratorDuckDB(database=str(database)),
            "gallery": GallerySource(source="demo", data_dir=str(data_dir), demo_scale=f"{scale:g}x"),
        }
    )
    sampler = RssSampler()
    sampler.start()
    started = time.time()
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_everything(
            defs,
            instance=instance,
            run_config={"ops": ops, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        records = instance.all_logs(result.run_id)
    total = time.time() - started
    sampler.stopped.set()
    sampler.join()

    steps: dict[str, dict] = {}
    for record in records:
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        step = steps.setdefault(event.step_key, {})
        if event.event_type_value == "STEP_START":
            step["start"] = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            step["end"] = record.timestamp
    out_steps = {}
    for key, step in sorted(steps.items(), key=lambda kv: kv[1].get("start", 0)):
        if "start" not in step or "end" not in step:
            continue
        rss = [b for t, b in sampler.samples if step["start"] <= t <= step["end"]]
        # A step shorter than the sampling interval has no sample: its peak is unknown (None), not 0.
        peak = max(rss) / 2**20 if rss else None
        out_steps[key] = {"seconds": step["end"] - step["start"], "peak_rss_mb": peak}
    with duckdb.connect(str(database), read_only=True) as con:
        sizes = con.execute(
            "SELECT (SELECT count(*) FROM ingest.raw_artworks), (SELECT count(DISTINCT user_id) FROM "
            "ingest.raw_transactions), (SELECT count(*) FROM ingest.raw_transactions), "
            "(SELECT count(*) FROM split.last_basket_split WHERE split = 'test')"
        ).fetchone()
        auc = dict(con.execute("SELECT method, auc FROM evaluation.metric_table").fetchall())
        silhouette_check = exact_silhouette_check(con) if sizes[0] <= EXACT_SILHOUETTE_MAX_ARTWORKS else None
    return {
        "scale": scale,
        "success": bool(result.success),
        "n_artworks": sizes[0],
        "n_users": sizes[1],
        "n_purchases": sizes[2],
        "n_test_rows": sizes[3],
        "total_seconds": total,
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps": out_steps,
        "auc": auc,
        "silhouette_check": silhouette_check,
    }


EXACT_SILHOUETTE_MAX_ARTWORKS = 8192  # above this the exact silhouettes alone take many minutes


def exact_silhouette_check(con) -> dict:
    """Re-cluster the run's embeddings with exact silhouettes: same chosen run? How far is the sampled estimate?"""
    from curatornet_pipeline.configs import ClusteringConfig
    from curatornet_pipeline.core.clustering import cluster_embeddings
    from curatornet_pipeline.core.preflight import resolve_n_clusters
    from curatornet_pipeline.storage import read_vectors

    defaults = ClusteringConfig()
    embeddings = read_vectors(
        con, "SELECT embedding FROM features.resnet50_embeddings ORDER BY artwork_idx", "embedding"
    )
    sampled = con.execute("SELECT run, silhouette FROM features.clustering_runs WHERE chosen").fetchone()
    started = time.perf_counter()
    exact = cluster_embeddings(
        embeddings,
        resolve_n_clusters(defaults.n_clusters, len(embeddings))[0],
        defaults.n_runs,
        defaults.pca_components,
        defaults.seed,
        silhouette_sample_size=0,
    )
    return {
        "sample_size": defaults.silhouette_sample_size,
        "sampled_chosen_run": int(sampled[0]),
        "exact_chosen_run": int(exact.chosen_run),
        "same_run": int(sampled[0]) == int(exact.chosen_run),
        "sampled_silhouette": float(sampled[1]),
        "exact_silhouette_of_that_run": float(exact.silhouettes[int(sampled[0])]),
        "abs_difference": abs(float(sampled[1]) - float(exact.silhouettes[int(sampled[0])])),
        "exact_clustering_seconds": time.perf_counter() - started,
    }


def growth_exponent(sizes: list[float], seconds: list[float]) -> float | None:
    """Least-squares slope of log(seconds) on log(size); None with fewer than two scales."""
    if len(sizes) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(np.maximum(seconds, 1e-3)), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 1.0, 4.0])
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--quick", action="store_true", help="20K triplets, 2 epochs: a smoke test, not the defaults")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)  # internal: run one scale, print JSON
    args = parser.parse_args()

    if args.one is not None:
        with tempfile.TemporaryDirectory(prefix="curatornet_scaling_") as tmp:
            print("RESULT " + json.dumps(run_one(args.one, Path(tmp), QUICK_OPS if args.quick else {})), flush=True)
        return

    env = dict(os.environ)
    if args.precision != "auto":
        env["CURATORNET_PRECISION"] = args.precision
    runs = []
    for scale in args.scales:
        print(f"scale {scale:g}x ...", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(scale)] + (["--quick"] if args.quick else []),
            env=env, capture_output=True, text=True, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            print(done.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"scale {scale:g}x failed (exit {done.returncode})")
        runs.append(json.loads(lines[-1][len("RESULT "):]))
        print(f"scale {scale:g}x: {runs[-1]['total_seconds']:.0f} s", file=sys.stderr, flush=True)

    sizes = [r["n_artworks"] for r in runs]
    stage_names = list(dict.fromkeys(k for r in runs for k in r["steps"]))
    exponents = {
        name: growth_exponent(
            [r["n_artworks"] for r in runs if name in r["steps"]],
            [r["steps"][name]["seconds"] for r in runs if name in r["steps"]],
        )
        for name in stage_names
    }
    exponents["total"] = growth_exponent(sizes, [r["total_seconds"] for r in runs])
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    settings = "quick (20K triplets, 2 epochs)" if args.quick else "defaults"
    print(json.dumps({"machine": machine, "precision": args.precision, "settings": settings, "runs": runs,
                      "exponents": exponents}, indent=2))

    print()
    header = " | ".join(f"{r['scale']:g}x s (peak MB)" for r in runs)
    print(f"| step | {header} | exponent |")
    print("|---|" + "---|" * len(runs) + "---|")
    for name in stage_names:
        cells = []
        for r in runs:
            step = r["steps"].get(name)
            if step is None:
                cells.append("-")
            else:
                peak = "-" if step["peak_rss_mb"] is None else f"{step['peak_rss_mb']:.0f}"
                cells.append(f"{step['seconds']:.1f} ({peak})")
        b = exponents[name]
        print(f"| {name} | " + " | ".join(cells) + f" | {'-' if b is None else f'{b:.2f}'} |")
    totals = " | ".join(f"**{r['total_seconds'] / 60:.1f} min** ({r['process_peak_rss_mb']:.0f})" for r in runs)
    b = exponents["total"]
    print(f"| **whole pipeline** | {totals} | {'-' if b is None else f'{b:.2f}'} |")
    print()
    for r in runs:
        print(f"{r['scale']:g}x: {r['n_artworks']} artworks, {r['n_users']} users, {r['n_purchases']} purchases; "
              "AUC " + ", ".join(f"{m} {a:.4f}" for m, a in sorted(r["auc"].items())))
        check = r["silhouette_check"]
        if check:
            print(f"  silhouette on {check['sample_size']} sampled artworks: run {check['sampled_chosen_run']} "
                  f"({check['sampled_silhouette']:.4f}); exact: run {check['exact_chosen_run']} "
                  f"({check['exact_silhouette_of_that_run']:.4f} for the sampled choice), "
                  f"|difference| {check['abs_difference']:.4f}")
    print(f"machine: {machine}; settings: {settings}; precision: {args.precision}")


if __name__ == "__main__":
    main()
