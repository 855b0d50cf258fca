"""The fast path against the retrain: one new purchase in the demo's purchases.csv, seconds until it is served.

1. Materializes the whole graph into a temporary folder on the demo gallery (default: paper scale, 6,040
   artworks) with a reduced training budget (the refresh does not depend on how well the model trained),
   timing it: the baseline, a full retrain.
2. Picks a never-bought one-of-a-kind work that the gallery recommends most often and a customer it is
   recommended to, appends their purchase of it to purchases.csv, and times `curatornet refresh` as a user
   runs it (a fresh process: imports included).
3. Verifies the purchase is reflected: the work is in nobody's recommendations and the buyer's list changed.

Prints JSON, then a markdown table.

    python benchmarks/bench_refresh.py [--scale paper|small|tiny] [--keep DIR | --reuse DIR]

With --keep DIR the pipeline output (DuckDB file, gallery, serving snapshot) stays in DIR, e.g. for
benchmarks/bench_webapp.py. With --reuse DIR an earlier run's output in DIR is used instead of step 1 (no
full-run time then, hence no ratio); a first refresh brings its served tables up to date before the purchase.
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
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0
REDUCED_BUDGET = {
    "visual_clusters": {"config": {"n_runs": 3}},
    "triplets": {"config": {"total_train_triplets": 60000}},
    "random_triplets": {"config": {"total_train_triplets": 60000}},
    "curatornet_model": {"config": {"max_epochs": 2}},
    "curatornet_random_sampling_model": {"config": {"max_epochs": 1}},
    "vbpr_model": {"config": {"max_epochs": 1}},
    "vbpr_random_sampling_model": {"config": {"max_epochs": 1}},
}


def _run(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def _served(database: Path, sql: str, params: list | None = None):
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql, params or []).df()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="paper", choices=["paper", "small", "tiny"])
    parser.add_argument("--keep", help="keep the pipeline output in this (new or empty) folder")
    parser.add_argument("--reuse", help="use the pipeline output already in this folder (skips the full run)")
    args = parser.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_refresh_") as tmp:
        data_dir = Path(args.keep or args.reuse or tmp).resolve()
        env = {**os.environ, "CURATORNET_DATA_DIR": str(data_dir), "CURATORNET_DEMO_SCALE": args.scale}
        for name in ("DAGSTER_HOME", "CURATORNET_DUCKDB_PATH", "CURATORNET_SOURCE"):
            env.pop(name, None)
        config = data_dir / "reduced.yaml"
        config.write_text(json.dumps({"ops": REDUCED_BUDGET}))  # JSON is YAML
        cli = [sys.executable, "-m", "curatornet_pipeline.cli"]
        full_seconds = None
        if args.reuse:
            first_refresh_seconds = _run([*cli, "refresh"], env)
        else:
            full_seconds = _run([*cli, "materialize", "--config", str(config), "--log-level", "WARNING"], env)
            first_refresh_seconds = None

        database = data_dir / "curatornet.duckdb"
        popular = _served(
            database,
            "SELECT r.artwork_id, count(*) AS n FROM serving.user_recommendations r "
            "JOIN serving.catalogue c USING (artwork_id) WHERE c.n_purchases = 0 "
            "GROUP BY r.artwork_id ORDER BY n DESC, r.artwork_id LIMIT 1",
        )
        bought, listed_for = popular["artwork_id"][0], int(popular["n"][0])
        buyer = _served(
            database, "SELECT min(user_id) AS u FROM serving.user_recommendations WHERE artwork_id = ?", [bought]
        )["u"][0]
        before = _served(
            database, "SELECT artwork_id FROM serving.user_recommendations WHERE user_id = ? ORDER BY rank", [buyer]
        )["artwork_id"].tolist()
        gallery = next(data_dir.glob("demo_gallery_*"))
        with (gallery / "purchases.csv").open("a") as handle:
            handle.write(f"{buyer},2100000000,\"['{bought}']\"\n")

        refresh_seconds = _run([*cli, "refresh"], env)
        still_listed = int(
            _served(database, "SELECT count(*) AS n FROM serving.user_recommendations WHERE artwork_id = ?", [bought])[
                "n"
            ][0]
        )
        after = _served(
            database, "SELECT artwork_id FROM serving.user_recommendations WHERE user_id = ? ORDER BY rank", [buyer]
        )["artwork_id"].tolist()
        counts = _served(
            database,
            "SELECT (SELECT count(*) FROM serving.catalogue) AS artworks, "
            "(SELECT count(DISTINCT user_id) FROM serving.user_recommendations) AS users, "
            "(SELECT count(*) FROM serving.user_recommendations) AS recommendations",
        ).iloc[0]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "scale": args.scale,
        "artworks": int(counts["artworks"]),
        "users": int(counts["users"]),
        "served_recommendations": int(counts["recommendations"]),
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "full_run_reduced_budget_seconds": None if full_seconds is None else round(full_seconds, 1),
        "first_refresh_after_full_run_seconds": None if first_refresh_seconds is None else round(first_refresh_seconds, 1),
        "refresh_seconds": round(refresh_seconds, 1),
        "speed_up_vs_full_run": None if full_seconds is None else round(full_seconds / refresh_seconds, 1),
        "target_seconds": TARGET_SECONDS,
        "bought_artwork_listed_for_users_before": listed_for,
        "bought_artwork_listed_for_users_after": still_listed,
        "buyer_list_changed": before != after,
        "reflected": still_listed == 0 and before != after,
        "within_target": refresh_seconds < TARGET_SECONDS,
    }
    print(json.dumps(result, indent=2))
    print()
    print("| scale | artworks | users | full run (reduced budget) s | `curatornet refresh` s | ratio | reflected |")
    print("|---|---|---|---|---|---|---|")
    full = "not run (--reuse)" if full_seconds is None else f"{full_seconds:.1f}"
    ratio = "-" if full_seconds is None else f"{result['speed_up_vs_full_run']}x"
    print(
        f"| {args.scale} | {result['artworks']:,} | {result['users']:,} | {full} | {refresh_seconds:.1f} | "
        f"{ratio} | {'yes' if result['reflected'] else 'NO'} |"
    )
    if not result["reflected"]:
        sys.exit("the new purchase was not reflected")


if __name__ == "__main__":
    main()
