"""Epochs to a validation plateau: CuratorNet's default training on the default demo gallery, uncapped.

Materializes the graph up to ``training_triplets`` with default settings (skipped when the DuckDB file in
``--data-dir`` already holds them), then trains the six-strategy CuratorNet with the asset's default
configuration but ``--max-epochs`` epochs and no early stopping, and reports per epoch the validation
accuracy, and for each early-stopping patience the epoch training would stop at, the best epoch it would
keep and the accuracy given up against the uncapped run. This is how the default ``max_epochs`` and
``early_stopping_patience`` of ``curatornet_model`` were chosen.

    python benchmarks/bench_convergence.py [--data-dir data/convergence] [--max-epochs 30] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import dagster as dg
import duckdb


def materialize_upstream(data_dir: Path) -> None:
    from curatornet_pipeline.definitions import build_definitions
    from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB
    from curatornet_pipeline.resources import CuratorDuckDB, GallerySource

    defs = build_definitions(
        {
            "duckdb": CuratorDuckDB(database=str(data_dir / "curatornet.duckdb")),
            "gallery": GallerySource(source="demo", data_dir=str(data_dir), demo_scale="paper"),
        }
    )
    keys = ["source_files", "raw_artworks", "raw_transactions", "resnet50_embeddings", "visual_clusters",
            "last_basket_split", "triplets", "training_triplets"]
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(FULL_REFRESH_JOB).execute_in_process(
            instance=instance, tags=ALL_STRATEGIES_TAGS, asset_selection=[dg.AssetKey(k) for k in keys]
        )
    if not result.success:
        raise SystemExit("upstream materialization failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/convergence")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # on a machine shared with other jobs one thread avoids hand-offs
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / "curatornet.duckdb"

    def has_union() -> bool:
        if not database.exists():
            return False
        with duckdb.connect(str(database), read_only=True) as con:
            return bool(con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'triplets' "
                "AND table_name = 'training_triplets'"
            ).fetchone()[0])

    if not has_union():
        started = time.perf_counter()
        materialize_upstream(data_dir)
        print(f"upstream materialized in {time.perf_counter() - started:.0f} s", flush=True)

    from curatornet_pipeline import tables
    from curatornet_pipeline.assets.model import CuratorNetTrainingConfig
    from curatornet_pipeline.core.training import train_curatornet
    from curatornet_pipeline.readers import load_model_features
    from curatornet_pipeline.storage import read_triplet_set

    with duckdb.connect(str(database), read_only=True) as con:
        _, features = load_model_features(con)
        train, _ = read_triplet_set(con, tables.TRAINING_TRIPLETS, tables.TRAINING_PROFILES, "split = 'train'")
        validation, _ = read_triplet_set(
            con, tables.TRAINING_TRIPLETS, tables.TRAINING_PROFILES, "split = 'validation'"
        )
    defaults = CuratorNetTrainingConfig()
    config = defaults.training_config(defaults.l2_lambdas[0])
    config = type(config)(**{**config.__dict__, "max_epochs": args.max_epochs, "early_stopping_patience": 0})
    started = time.perf_counter()
    result = train_curatornet(features, train, validation, config, lambda m: print(m, flush=True))
    seconds = time.perf_counter() - started
    accuracy = result.history["validation_accuracy"].tolist()
    uncapped_best = max(accuracy)

    stops = {}
    for patience in range(2, 9):
        best, best_epoch, stale, stop = -1.0, 0, 0, len(accuracy)
        for epoch, value in enumerate(accuracy, start=1):
            if value > best:
                best, best_epoch, stale = value, epoch, 0
            else:
                stale += 1
            if stale >= patience:
                stop = epoch
                break
        stops[patience] = {"stops_after_epoch": stop, "best_epoch": best_epoch,
                           "accuracy_given_up": round(uncapped_best - best, 5)}
    report = {
        "machine": f"{os.cpu_count()} CPU cores",
        "n_train": len(train),
        "n_validation": len(validation),
        "learning_rate": config.learning_rate,
        "epochs_run": len(accuracy),
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / len(accuracy), 1),
        "validation_accuracy": [round(a, 5) for a in accuracy],
        "learning_rate_per_epoch": result.history["learning_rate"].tolist(),
        "best_epoch_uncapped": result.best_epoch,
        "early_stopping": stops,
    }
    print(json.dumps(report, indent=2))
    print("\n| patience | stops after epoch | best epoch kept | accuracy given up |\n|---|---|---|---|")
    for patience, row in stops.items():
        print(f"| {patience} | {row['stops_after_epoch']} | {row['best_epoch']} | {row['accuracy_given_up']:.5f} |")


if __name__ == "__main__":
    main()
