"""The ``curatornet`` command: materialize the graph, print metrics, recommend for a new user."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from curatornet_pipeline import settings


def _instance():
    import dagster as dg

    # With DAGSTER_HOME set (the Makefile sets .dagster_home) runs are recorded where `make ui` shows them.
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def cmd_materialize(args: argparse.Namespace) -> int:
    from curatornet_pipeline.definitions import defs
    from curatornet_pipeline.runner import materialize_everything

    run_config: dict = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
    if args.config:
        import yaml  # comes with dagster

        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, dict):
            print(f"error: {args.config}: expected a YAML mapping with an 'ops' key", file=sys.stderr)
            return 2
        run_config.update({k: v for k, v in loaded.items() if k != "loggers"})
    if args.sampling_preset:
        for op in ("triplets", "random_triplets"):
            run_config.setdefault("ops", {}).setdefault(op, {}).setdefault("config", {})["preset"] = args.sampling_preset
    print(f"materializing every asset into {settings.duckdb_path()} (source: {settings.source_setting()})", flush=True)
    started = time.perf_counter()
    with _instance() as instance:
        result = materialize_everything(defs, instance=instance, run_config=run_config, raise_on_error=False)
    minutes = (time.perf_counter() - started) / 60
    if not result.success:
        print(f"run {result.run_id} FAILED after {minutes:.1f} min; see the log above", file=sys.stderr)
        return 1
    print(f"run {result.run_id} succeeded in {minutes:.1f} min", flush=True)
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    """The fast path: new purchases, likes and images in, new served recommendations out, no retraining."""
    from curatornet_pipeline.definitions import defs
    from curatornet_pipeline.runner import refresh_serving
    from curatornet_pipeline.snapshot import snapshot_path

    run_config = {
        "loggers": {"console": {"config": {"log_level": args.log_level}}},
        "ops": {"served_recommendations": {"config": {"k": args.k}}},
    }
    print(f"refreshing served recommendations in {settings.duckdb_path()} (no retraining)", flush=True)
    started = time.perf_counter()
    with _instance() as instance:
        result = refresh_serving(defs, instance=instance, run_config=run_config, raise_on_error=False)
    seconds = time.perf_counter() - started
    if not result.success:
        print(f"refresh {result.run_id} FAILED after {seconds:.1f} s; see the log above", file=sys.stderr)
        return 1
    print(f"refresh {result.run_id} succeeded in {seconds:.1f} s; snapshot {snapshot_path(settings.duckdb_path())}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    import duckdb

    from curatornet_pipeline.core.reporting import markdown_table

    path = Path(args.database) if args.database else settings.duckdb_path()
    if not path.exists():
        print(f"no DuckDB file at {path}: run `make run` (or `curatornet materialize`) first", file=sys.stderr)
        return 1
    with duckdb.connect(str(path), read_only=True) as con:
        try:
            table = con.execute("SELECT * FROM evaluation.metric_table ORDER BY auc DESC").df()
        except duckdb.CatalogException:
            print(f"{path} has no evaluation.metric_table yet: materialize the graph first", file=sys.stderr)
            return 1
    print(markdown_table(table))
    return 0


def _gallery_folder(explicit: str | None) -> Path:
    """The folder holding images/: given on the command line, else the configured source."""
    if explicit:
        return Path(explicit)
    from curatornet_pipeline.resources import default_resources

    return default_resources()["gallery"].folder()


def cmd_recommend(args: argparse.Namespace) -> int:
    from curatornet_pipeline.core.ingest import find_image_files
    from curatornet_pipeline.core.picture import PictureRow, contact_sheet
    from curatornet_pipeline.core.reporting import markdown_table
    from curatornet_pipeline.serving import recommend_for_items

    items = [i.strip() for i in args.items.split(",") if i.strip()]
    path = Path(args.database) if args.database else settings.duckdb_path()
    try:
        recommendations, model_id = recommend_for_items(path, items, k=args.k, model_id=args.model_id)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"top {len(recommendations)} for a profile of {len(items)} artworks (model {model_id}):")
    print(markdown_table(recommendations))
    if args.picture:
        files = find_image_files(_gallery_folder(args.gallery), items + recommendations["artwork_id"].tolist())
        sheet = contact_sheet(
            f"CuratorNet ({model_id}) for a new user",
            [
                PictureRow("liked artworks (the profile)", [files[i] for i in items]),
                PictureRow(
                    f"top {len(recommendations)} recommendations", [files[i] for i in recommendations["artwork_id"]]
                ),
            ],
        )
        Path(args.picture).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.picture)
        print(f"picture written to {args.picture}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="curatornet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    materialize = sub.add_parser("materialize", help="materialize every asset (all six triplet partitions) in one run")
    materialize.add_argument("--sampling-preset", choices=["paper"], help="sample the paper's 10M training triplets")
    materialize.add_argument("--config", help="YAML run config (the launchpad's format, e.g. ops: {visual_clusters: ...})")
    materialize.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    materialize.set_defaults(func=cmd_materialize)

    refresh = sub.add_parser(
        "refresh",
        help="the fast path: re-read the sources (purchases, likes, new images) and recompute every served "
        "recommendation with the current model, without retraining",
    )
    refresh.add_argument("--k", type=int, default=100, help="recommendations per user (default 100)")
    refresh.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING"])
    refresh.set_defaults(func=cmd_refresh)

    metrics = sub.add_parser("metrics", help="print the metric table (the paper's Table 2 layout)")
    metrics.add_argument("--database", help="DuckDB file (default: CURATORNET_DUCKDB_PATH or data/curatornet.duckdb)")
    metrics.set_defaults(func=cmd_metrics)

    recommend = sub.add_parser(
        "recommend", help="recommend artworks for a new user from liked artwork ids (no retraining)"
    )
    recommend.add_argument("--items", required=True, help="comma-separated artwork ids the user likes")
    recommend.add_argument("--k", type=int, default=20, help="how many recommendations (default 20)")
    recommend.add_argument("--model-id", help="a model_id of model.curatornet_models (default: the latest best)")
    recommend.add_argument("--database", help="DuckDB file (default: CURATORNET_DUCKDB_PATH or data/curatornet.duckdb)")
    recommend.add_argument("--picture", help="also write a PNG contact sheet of the profile and recommendations here")
    recommend.add_argument("--gallery", help="folder holding images/ (default: the configured CURATORNET_SOURCE)")
    recommend.set_defaults(func=cmd_recommend)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
