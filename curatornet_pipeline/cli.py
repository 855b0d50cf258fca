"""The ``curatornet`` command: materialize the graph, print metrics, recommend for a new user, check the instance.

Expected failures (bad input, a busy/missing/damaged DuckDB file, a missing table, a model that cannot be
loaded) print one sentence to stderr and exit non-zero; ``--debug`` (or CURATORNET_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from curatornet_pipeline import settings, tables

DEBUG_ENV = "CURATORNET_DEBUG"
INTERRUPTED_EXIT = 130
# jobs.FULL_REFRESH_JOB and jobs.COLD_START_JOB, spelled here so that the parser does not import Dagster.
FULL_REFRESH_JOB, COLD_START_JOB = "curatornet_full_refresh", "curatornet_cold_start"


def _instance():
    from curatornet_pipeline.instance_health import open_instance

    # With DAGSTER_HOME set (the Makefile sets .dagster_home) runs are recorded where `make ui` shows them.
    return open_instance()


def _database(args: argparse.Namespace) -> Path:
    return Path(args.database) if getattr(args, "database", None) else settings.duckdb_path()


def _terminate_like_ctrl_c(signum, frame) -> None:
    raise KeyboardInterrupt


def _interrupted(result) -> bool:
    import dagster as dg

    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.RUN_FAILURE:
            reason = getattr(event.event_specific_data, "failure_reason", None)
            return reason is not None and reason.value == "UNEXPECTED_TERMINATION"
    return False


def cmd_materialize(args: argparse.Namespace) -> int:
    from curatornet_pipeline.definitions import defs
    from curatornet_pipeline.duckdb_file import check_database_file
    from curatornet_pipeline.runner import materialize_everything

    if args.preset and args.job != FULL_REFRESH_JOB:
        print(
            f"error: --preset {args.preset} configures the full refresh's steps; {args.job} takes its settings "
            "from --config",
            file=sys.stderr,
        )
        return 2
    run_config: dict = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
    if args.config:
        import yaml  # comes with dagster

        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, dict):
            print(f"error: {args.config}: expected a YAML mapping with an 'ops' key", file=sys.stderr)
            return 2
        run_config.update({k: v for k, v in loaded.items() if k != "loggers"})
    if args.preset:
        from curatornet_pipeline.presets import apply_preset

        run_config = apply_preset(run_config, args.preset)
    database = settings.duckdb_path()
    # A damaged file would take every upstream step's rewrite and then fail at the first step that reads a
    # lost block, on every rerun; refuse before anything is written.
    check_database_file(database)
    what = "every asset" if args.job == FULL_REFRESH_JOB else f"the {args.job} job"
    print(f"materializing {what} into {database} (source: {settings.source_setting()})", flush=True)
    started = time.perf_counter()
    with _instance() as instance:
        result = materialize_everything(
            defs,
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
            report=lambda line: print(line, file=sys.stderr, flush=True),
            job_name=args.job,
        )
    minutes = (time.perf_counter() - started) / 60
    if _interrupted(result):
        print(f"run {result.run_id} stopped (interrupted) after {minutes:.1f} min", file=sys.stderr)
        return INTERRUPTED_EXIT
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
    from curatornet_pipeline.duckdb_file import connect_for_reading
    from curatornet_pipeline.lineage import StaleTablesError, require_consistent

    path = _database(args)
    with connect_for_reading(path, args.wait) as con:
        try:
            table = con.execute(f"SELECT * FROM {tables.METRIC_TABLE} ORDER BY auc DESC").df()
        except duckdb.CatalogException:
            print(f"{path} has no {tables.METRIC_TABLE} yet: materialize the graph first", file=sys.stderr)
            return 1
        try:  # a table computed from inputs that a later, failed run replaced is not printed as current
            require_consistent(con, [tables.METRIC_TABLE.name])
        except StaleTablesError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(markdown_table(table))
    return 0


def _recorded_source_folder() -> Path | None:
    """The folder the latest ``source_files`` materialization of the DAGSTER_HOME instance read."""
    if not os.environ.get("DAGSTER_HOME"):
        return None
    import dagster as dg

    with _instance() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("source_files"))
    folder = event.asset_materialization.metadata.get("folder") if event and event.asset_materialization else None
    return Path(folder.value) if folder is not None else None


def _gallery_candidates(explicit: str | None, database: Path) -> list[Path]:
    """Folders that may hold images/: the given one, else the source the file was built from, the configured
    source, and demo galleries generated next to the DuckDB file."""
    if explicit:
        return [Path(explicit)]
    from curatornet_pipeline.resources import default_resources

    candidates = [folder for folder in [_recorded_source_folder()] if folder is not None]
    try:
        candidates.append(default_resources()["gallery"].folder())
    except FileNotFoundError:
        pass
    candidates.extend(sorted(database.parent.glob("demo_gallery_*")))
    return list(dict.fromkeys(candidates))


def _requested_items(args: argparse.Namespace) -> list[str]:
    items = [i.strip() for i in (args.items or "").split(",") if i.strip()]
    items += [i.strip() for i in args.item or [] if i.strip()]
    if args.items_file:
        from curatornet_pipeline.core.errors import InputDataError

        try:
            lines = Path(args.items_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise InputDataError(args.items_file, f"cannot read the artwork ids: {error}") from error
        items += [line.strip() for line in lines if line.strip()]
    return list(dict.fromkeys(items))


def cmd_recommend(args: argparse.Namespace) -> int:
    from curatornet_pipeline.core.picture import PictureRow, contact_sheet
    from curatornet_pipeline.core.reporting import markdown_table
    from curatornet_pipeline.serving import gallery_folder_with_images, recommend_for_items

    items = _requested_items(args)
    if not items:
        print("error: give the liked artwork ids with --items, --item or --items-file", file=sys.stderr)
        return 2
    path = _database(args)
    try:
        recommendations, model_id = recommend_for_items(path, items, k=args.k, model_id=args.model_id)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"top {len(recommendations)} for a profile of {len(items)} artworks (model {model_id}):")
    print(markdown_table(recommendations))
    if args.picture:
        recommended = recommendations["artwork_id"].tolist()
        folder = gallery_folder_with_images(_gallery_candidates(args.gallery, path), items + recommended)
        images = folder / "images"
        files = {p.stem: p for p in images.iterdir()}
        sheet = contact_sheet(
            f"CuratorNet ({model_id}) for a new user",
            [
                PictureRow("liked artworks (the profile)", [files[i] for i in items]),
                PictureRow(f"top {len(recommendations)} recommendations", [files[i] for i in recommended]),
            ],
        )
        Path(args.picture).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.picture)
        print(f"picture written to {args.picture}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report runs whose process is gone, who holds the pool slots, and whether the DuckDB file is whole."""
    from curatornet_pipeline.duckdb_file import DatabaseBusyError, DatabaseFileError, connect_for_reading
    from curatornet_pipeline.instance_health import release_dead_runs, slot_holders, unfinished_runs

    problems = 0
    home = os.environ.get("DAGSTER_HOME")
    print(f"instance: {home or 'none (DAGSTER_HOME unset; runs are not recorded)'}")
    if home:
        with _instance() as instance:
            if args.fix:
                for line in release_dead_runs(instance):
                    print(f"  fixed: {line}")
            for run in unfinished_runs(instance):
                state = {True: "alive", False: "GONE", None: "unknown (other host or not recorded)"}[run.alive]
                slots = f", holds {', '.join(run.held_slots)}" if run.held_slots else ""
                print(f"  run {run.run_id}: {run.status}, process {run.process} {state}{slots}")
                problems += run.alive is False
                if run.alive is None and run.held_slots:
                    print(f"    if that run's process is gone: `curatornet unlock --run-id {run.run_id}`")
            unfinished = {run.run_id for run in unfinished_runs(instance)}
            for holder in slot_holders(instance):
                if holder.run_id not in unfinished:
                    print(
                        f"  pool slot {holder.pool}/{holder.step_key} held by "
                        f"{'unknown run' if holder.run_status is None else 'finished run'} {holder.run_id}"
                    )
                    problems += holder.alive is False
            if problems and not args.fix:
                print("  -> `curatornet doctor --fix` marks dead runs failed and frees their slots")
    database = _database(args)
    if not database.exists():
        print(f"database: no DuckDB file at {database} yet (the first run creates it)")
        return 1 if problems else 0
    try:
        connect_for_reading(database, wait_seconds=0).close()
        print(f"database: {database} is whole")
    except DatabaseBusyError as error:
        print(f"database: {error}")
    except DatabaseFileError as error:
        print(f"database: {error}")
        problems += 1
    return 1 if problems else 0


def cmd_unlock(args: argparse.Namespace) -> int:
    """Free the pool slots of one run (and mark it failed) that the user knows is gone."""
    from curatornet_pipeline.instance_health import recorded_process_alive, release_dead_runs, release_run

    if not os.environ.get("DAGSTER_HOME"):
        print("error: DAGSTER_HOME is not set, so there is no instance whose slots could be held", file=sys.stderr)
        return 2
    with _instance() as instance:
        if not args.run_id:
            lines = release_dead_runs(instance)
            print("\n".join(lines) if lines else "no run whose process is gone holds a slot")
            return 0
        run = instance.get_run_by_id(args.run_id)
        if run is not None and recorded_process_alive(dict(run.tags)) and not args.force:
            print(
                f"error: run {args.run_id} is still running (pid {run.tags.get('curatornet/pid')}); stop it with "
                "Ctrl-C/kill, or pass --force",
                file=sys.stderr,
            )
            return 2
        release_run(instance, args.run_id, "released by `curatornet unlock`")
        print(f"run {args.run_id}: marked failed (if it was unfinished) and its pool slots freed")
    return 0


def _expected_failure(error: BaseException) -> str | None:
    """The one-sentence message for a failure the user can act on, or None for a bug (keep the traceback)."""
    import duckdb

    from curatornet_pipeline.core.errors import InputDataError
    from curatornet_pipeline.duckdb_file import DatabaseBusyError, DatabaseFileError, is_damage, is_lock_conflict
    from curatornet_pipeline.serving import MissingImagesError, ModelLoadError

    if isinstance(error, (InputDataError, DatabaseBusyError, DatabaseFileError, ModelLoadError, MissingImagesError)):
        return str(error)
    if is_lock_conflict(error):
        return f"the DuckDB file is locked by another process (a run writing it?): {str(error).splitlines()[0]}"
    if is_damage(error):
        return f"the DuckDB file is damaged ({str(error).splitlines()[0]}): move it aside and rerun `curatornet materialize`"
    if isinstance(error, duckdb.CatalogException):
        return f"a table is missing from the DuckDB file ({str(error).splitlines()[0]}): run `curatornet materialize`"
    if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return str(error)
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curatornet", description=__doc__)
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", required=True)
    database_help = "DuckDB file (default: CURATORNET_DUCKDB_PATH or data/curatornet.duckdb)"
    wait_help = "seconds to wait while a run holds the DuckDB file (default: CURATORNET_LOCK_WAIT_SECONDS or 30)"

    materialize = sub.add_parser("materialize", help="materialize every asset (all six triplet partitions) in one run")
    materialize.add_argument(
        "--preset",
        choices=["paper"],
        help="the paper's settings: 10M triplets, CuratorNet lr 1e-4, lambda grid [0, 1e-4, 1e-3, 1e-2] for "
        "CuratorNet and VBPR and both random-sampling ablations (values in --config win)",
    )
    materialize.add_argument("--config", help="YAML run config (the launchpad's format, e.g. ops: {visual_clusters: ...})")
    materialize.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    materialize.add_argument(
        "--job",
        default=FULL_REFRESH_JOB,
        choices=[FULL_REFRESH_JOB, COLD_START_JOB],
        help=f"the job to run (default {FULL_REFRESH_JOB}, every asset; {COLD_START_JOB}: the new-customer and "
        "new-artwork evaluation, after a full run)",
    )
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
    metrics.add_argument("--database", help=database_help)
    metrics.add_argument("--wait", type=float, help=wait_help)
    metrics.set_defaults(func=cmd_metrics)

    recommend = sub.add_parser(
        "recommend", help="recommend artworks for a new user from liked artwork ids (no retraining)"
    )
    recommend.add_argument("--items", help="comma-separated artwork ids the user likes")
    recommend.add_argument("--item", action="append", help="one liked artwork id (repeatable; ids may contain commas)")
    recommend.add_argument("--items-file", help="a text file with one liked artwork id per line")
    recommend.add_argument("--k", type=int, default=20, help="how many recommendations (default 20)")
    recommend.add_argument("--model-id", help=f"a model_id of {tables.CURATORNET_MODELS} (default: the latest best)")
    recommend.add_argument("--database", help=database_help)
    recommend.add_argument("--picture", help="also write a PNG contact sheet of the profile and recommendations here")
    recommend.add_argument(
        "--gallery", help="folder holding images/ (default: the source the DuckDB file was built from)"
    )
    recommend.set_defaults(func=cmd_recommend)

    doctor = sub.add_parser("doctor", help="report dead runs, held pool slots and the DuckDB file's health")
    doctor.add_argument("--fix", action="store_true", help="mark runs whose process is gone failed and free their slots")
    doctor.add_argument("--database", help=database_help)
    doctor.set_defaults(func=cmd_doctor)

    unlock = sub.add_parser("unlock", help="free the pool slots of dead runs (or of --run-id)")
    unlock.add_argument("--run-id", help="the run whose slots to free (default: every run whose process is gone)")
    unlock.add_argument("--force", action="store_true", help="free the slots even if the run's process is alive")
    unlock.set_defaults(func=cmd_unlock)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    if args.command == "materialize":
        # SIGTERM stops a run the way Ctrl-C does (Dagster maps it to its interrupt handling during the run).
        signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except Exception as error:
        message = _expected_failure(error)
        if message is None or debug:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    finally:
        if args.command == "materialize":
            signal.signal(signal.SIGTERM, previous_sigterm)


if __name__ == "__main__":
    raise SystemExit(main())
