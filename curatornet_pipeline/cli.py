"""The ``curatornet`` command: materialize the graph, print metrics, recommend for a new user, check the instance.

Every failure prints one ``error:`` sentence to stderr: exit status 2 for bad input (a malformed source file,
a busy/missing/damaged DuckDB file, a missing table, a model that cannot be loaded), 1 for an internal error.
``materialize`` and ``refresh`` write Dagster's whole output to a log file under the data folder and add one
line saying where it is; on the terminal they show only progress lines. ``--verbose`` (alias ``--debug``, or
CURATORNET_DEBUG=1) shows everything and the traceback.

Runs are recorded in the project's Dagster instance (the repository's ``.dagster_home``, as under `make`)
unless DAGSTER_HOME names another; ``settings.dagster_home`` says how it is found.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from curatornet_pipeline import settings, tables

DEBUG_ENV = "CURATORNET_DEBUG"
INTERRUPTED_EXIT = 130
# jobs.FULL_REFRESH_JOB, jobs.COLD_START_JOB and jobs.ONLINE_METRICS_JOB, spelled here so that the parser does not
# import Dagster.
FULL_REFRESH_JOB, COLD_START_JOB = "curatornet_full_refresh", "curatornet_cold_start"
ONLINE_METRICS_JOB = "curatornet_online_metrics"
BAD_INPUT_EXIT = 2
INTERNAL_ERROR_EXIT = 1
RUN_COMMANDS = ("materialize", "refresh")
# Dagster logs every event of a run into its log file; --log-level only decides what reaches the terminal.
RUN_LOG_LEVEL = "DEBUG"
# Exceptions whose message is already the sentence a user needs (matched by class name, as a failed run
# reports its step's exception by name).
_USER_ERRORS = {
    "InputDataError",
    "DatabaseFileError",
    "DatabaseDamagedError",
    "DatabaseBusyError",
    "ModelLoadError",
    "MissingImagesError",
    "FileNotFoundError",
    "IsADirectoryError",
    "PermissionError",
}


class CommandFailed(Exception):
    """A failure already put into one sentence, with its exit status and the run it ended (if any)."""

    def __init__(self, message: str, code: int, run_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.run_id = run_id


# Dagster's console log line: "<date> <time> <offset> - <logger> - <LEVEL> - <job> - <run id> - ...".
_DAGSTER_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - \S+ - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - ")


class _RunLog:
    """Stands in for stderr while a run executes: every line goes to the log file; progress lines (Dagster's
    INFO and WARNING messages at or above ``terminal_level``, with their continuation lines) also go to
    stdout; with ``verbose`` every line also goes to the real stderr, as before.

    Dagster's console logger writes to whatever ``sys.stderr`` is when it logs, so this catches its output,
    the step failures' stack traces and the ~40 "Dependencies ... Not executing" lines of a failed run.
    """

    encoding = "utf-8"

    def __init__(self, path: Path, stdout, stderr, verbose: bool, terminal_level: str = "INFO") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._stdout, self._stderr, self._verbose = stdout, stderr, verbose
        levels = ["DEBUG", "INFO", "WARNING"]
        self._shown = set(levels[levels.index(terminal_level) :])
        self._pending = ""
        self._progress = False  # whether the current Dagster message is a progress line

    def write(self, text: str) -> int:
        self._file.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._route(line)
        return len(text)

    def _route(self, line: str) -> None:
        if self._verbose:
            print(line, file=self._stderr, flush=True)
            return
        header = _DAGSTER_LINE.match(line)
        if header:
            self._progress = header.group(1) in self._shown
        if self._progress:
            print(line, file=self._stdout, flush=True)

    def append(self, text: str) -> None:
        self._file.write(text if text.endswith("\n") else text + "\n")
        self._file.flush()

    def flush(self) -> None:
        self._file.flush()

    def isatty(self) -> bool:
        return False  # no colour codes in the file

    def fileno(self) -> int:
        # Code that writes to the stderr file descriptor itself (a subprocess, a C library) writes to the log.
        self._file.flush()
        return self._file.fileno()

    def close(self) -> None:
        if self._pending:
            self._route(self._pending)
            self._pending = ""
        self._file.close()


@contextlib.contextmanager
def _capture_run_output(command: str, verbose: bool, terminal_level: str) -> Iterator[_RunLog]:
    """Route stderr through a :class:`_RunLog` writing ``<data dir>/logs/<command>-<UTC time>-<pid>.log``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = settings.log_dir() / f"{command}-{stamp}-{os.getpid()}.log"
    log = _RunLog(path, sys.stdout, sys.stderr, verbose, terminal_level)
    previous = sys.stderr
    sys.stderr = log
    try:
        yield log
    finally:
        sys.stderr = previous
        log.close()


@contextlib.contextmanager
def _dagster_home(home: Path | None) -> Iterator[None]:
    """DAGSTER_HOME set to ``home`` for the command (and put back after it, for callers of ``main``)."""
    previous = os.environ.get(settings.DAGSTER_HOME_ENV)
    if home is not None:
        os.environ[settings.DAGSTER_HOME_ENV] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(settings.DAGSTER_HOME_ENV, None)
        else:
            os.environ[settings.DAGSTER_HOME_ENV] = previous


def _instance_line() -> str:
    home, why = settings.dagster_home()
    if home is None:
        return f"instance: none, a temporary one ({why}): this run will not appear in `make ui`"
    return f"instance: {home} ({why})"


def _instance():
    from curatornet_pipeline.instance_health import open_instance

    # main() has set DAGSTER_HOME to the project's instance unless the caller set it, so runs are recorded
    # where `make ui` shows them.
    return open_instance()


def _error_text(info) -> str:
    """The message of one error of a failed step, without the "module.Class: " prefix, on one line."""
    text = " ".join(info.message.strip().splitlines())
    head, sep, rest = text.partition(": ")
    return rest if sep and head.split(".")[-1] == info.cls_name else text


def _run_failure(result, database: Path) -> CommandFailed:
    """One sentence and an exit status for a failed run, from its first failed step's chain of errors."""
    from curatornet_pipeline.duckdb_file import damage_error, find_damage, mentions_damage, mentions_lock_conflict

    run_id = result.run_id
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE" or event.event_specific_data.error is None:
            continue
        chain, info = [], event.event_specific_data.error
        while info is not None:  # Dagster wraps the step's exception; the causes follow
            chain.append(info)
            info = info.cause
        for info in chain:
            if info.cls_name in _USER_ERRORS:
                return CommandFailed(_error_text(info), BAD_INPUT_EXIT, run_id)
        for info in chain:
            if mentions_damage(info.message):
                return CommandFailed(str(damage_error(database, _error_text(info))), BAD_INPUT_EXIT, run_id)
            if mentions_lock_conflict(info.message):
                return CommandFailed(_locked_message(database, _error_text(info)), BAD_INPUT_EXIT, run_id)
        damage = find_damage(database)  # a damaged Parquet page often fails with a message naming no file
        if damage:
            return CommandFailed(str(damage), BAD_INPUT_EXIT, run_id)
        cause = next((i for i in chain if not i.cls_name.startswith("Dagster")), chain[-1])
        return CommandFailed(
            f"step {event.step_key} failed with an internal error ({cause.cls_name}: {_error_text(cause)})",
            INTERNAL_ERROR_EXIT,
            run_id,
        )
    return CommandFailed(f"run {run_id} failed before any step failed", INTERNAL_ERROR_EXIT, run_id)


def _locked_message(database: Path, detail: str) -> str:
    return f"the DuckDB file {database} is locked by another process (a run writing it?): {detail}"


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
    from curatornet_pipeline.definitions import build_definitions
    from curatornet_pipeline.duckdb_file import check_database_file
    from curatornet_pipeline.runner import materialize_everything

    if args.preset and args.job != FULL_REFRESH_JOB:
        raise CommandFailed(
            f"--preset {args.preset} configures the full refresh's steps; {args.job} takes its settings from --config",
            BAD_INPUT_EXIT,
        )
    run_config: dict = {"loggers": {"console": {"config": {"log_level": RUN_LOG_LEVEL}}}}
    if args.config:
        import yaml  # comes with dagster

        loaded = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(loaded, dict):
            raise CommandFailed(f"{args.config}: expected a YAML mapping with an 'ops' key", BAD_INPUT_EXIT)
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
            build_definitions(),  # built now, so the settings in the environment at this call are the ones used
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
            report=lambda line: print(line, flush=True),
            job_name=args.job,
        )
    minutes = (time.perf_counter() - started) / 60
    if _interrupted(result):
        raise CommandFailed(f"run {result.run_id} stopped (interrupted) after {minutes:.1f} min", INTERRUPTED_EXIT)
    if not result.success:
        raise _run_failure(result, database)
    print(f"run {result.run_id} succeeded in {minutes:.1f} min", flush=True)
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    """The fast path: new purchases, likes and images in, new served recommendations out, no retraining."""
    from curatornet_pipeline.definitions import build_definitions
    from curatornet_pipeline.duckdb_file import check_database_file
    from curatornet_pipeline.runner import refresh_serving
    from curatornet_pipeline.snapshot import snapshot_path

    run_config = {
        "loggers": {"console": {"config": {"log_level": RUN_LOG_LEVEL}}},
        "ops": {"served_recommendations": {"config": {"k": args.k}}},
    }
    # The refresh reads the model tables after it rewrote the serving inputs: a damaged block must stop it
    # before the first write, not half-way.
    check_database_file(settings.duckdb_path())
    print(f"refreshing served recommendations in {settings.duckdb_path()} (no retraining)", flush=True)
    started = time.perf_counter()
    with _instance() as instance:
        result = refresh_serving(build_definitions(), instance=instance, run_config=run_config, raise_on_error=False)
    seconds = time.perf_counter() - started
    if not result.success:
        raise _run_failure(result, settings.duckdb_path())
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
            raise CommandFailed(
                f"{path} has no {tables.METRIC_TABLE} yet: materialize the graph first", BAD_INPUT_EXIT
            ) from None
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
    """Report runs whose process is gone, who holds the pool slots, and whether the tables are whole.

    A missing or damaged catalog file (views only) is rebuilt from the data layer.
    """
    from curatornet_pipeline.duckdb_file import (
        DatabaseBusyError,
        DatabaseFileError,
        connect_for_reading,
        damage_error,
        damaged_files,
        damaged_tables,
        has_data_root,
        repair_catalog,
    )
    from curatornet_pipeline.instance_health import release_dead_runs, slot_holders, unfinished_runs

    problems = 0
    print(args.instance_line)
    if os.environ.get(settings.DAGSTER_HOME_ENV):
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
    if has_data_root(database):
        try:
            repaired = repair_catalog(database)  # the catalog holds only views: rebuilt from the tables
        except DatabaseFileError as error:
            print(f"database: {error}")
            return 1
        if repaired:
            print(f"database: {repaired}")
    elif not database.exists():
        print(f"database: no DuckDB file at {database} yet (the first run creates it)")
        return 1 if problems else 0
    try:
        if has_data_root(database):  # every file of every table, so overwritten pages are found too
            damaged = [(table, error, file) for table, file, error in damaged_files(database)]
        else:
            with connect_for_reading(database, wait_seconds=0) as con:
                damaged = [(table, error, None) for table, error in damaged_tables(con)]
    except DatabaseBusyError as error:
        print(f"database: {error}")
    except DatabaseFileError as error:
        print(f"database: {error}")
        problems += 1
    else:
        for table, error, file in damaged:
            print(f"database: {damage_error(database, error, table, file)}")
        if not damaged:
            print(f"database: {database} is whole (every table read to its last row)")
        problems += len(damaged)
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


def _expected_failure(error: BaseException, database: Path) -> str | None:
    """The one-sentence message for a failure the user can act on, or None for a bug (keep the traceback)."""
    import duckdb

    from curatornet_pipeline.core.errors import InputDataError
    from curatornet_pipeline.duckdb_file import (
        DatabaseBusyError,
        DatabaseFileError,
        damage_error,
        find_damage,
        is_damage,
        is_lock_conflict,
    )
    from curatornet_pipeline.serving import MissingImagesError, ModelLoadError

    if isinstance(error, (InputDataError, DatabaseBusyError, DatabaseFileError, ModelLoadError, MissingImagesError)):
        return str(error)
    if is_lock_conflict(error):
        return _locked_message(database, str(error).splitlines()[0])
    if isinstance(error, duckdb.Error):
        # Names the table and file; a damaged Parquet page often fails with a message naming no file.
        damage = find_damage(database)
        if damage:
            return str(damage)
    if is_damage(error):
        return str(damage_error(database, error))
    if isinstance(error, duckdb.CatalogException):
        return f"a table is missing from the DuckDB file ({str(error).splitlines()[0]}): run `curatornet materialize`"
    if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)):
        return str(error)
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curatornet", description=__doc__)
    parser.add_argument(
        "--verbose",
        "--debug",
        dest="verbose",
        action="store_true",
        help=f"show Dagster's whole output and the traceback of a failure (or set {DEBUG_ENV}=1)",
    )
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
    materialize.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"], help="what reaches the terminal (the log has all)"
    )
    materialize.add_argument(
        "--job",
        default=FULL_REFRESH_JOB,
        choices=[FULL_REFRESH_JOB, COLD_START_JOB, ONLINE_METRICS_JOB],
        help=f"the job to run (default {FULL_REFRESH_JOB}, every asset; {COLD_START_JOB}: the new-customer and "
        f"new-artwork evaluation, after a full run; {ONLINE_METRICS_JOB}: click-through and conversion from the "
        "views and clicks recorded since)",
    )
    materialize.set_defaults(func=cmd_materialize)

    refresh = sub.add_parser(
        "refresh",
        help="the fast path: re-read the sources (purchases, likes, new images) and recompute every served "
        "recommendation with the current model, without retraining",
    )
    refresh.add_argument("--k", type=int, default=100, help="recommendations per user (default 100)")
    refresh.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING"], help="what reaches the terminal (the log has all)"
    )
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
    verbose = args.verbose or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    if args.command == "materialize":
        # SIGTERM stops a run the way Ctrl-C does (Dagster maps it to its interrupt handling during the run).
        signal.signal(signal.SIGTERM, _terminate_like_ctrl_c)
    log: _RunLog | None = None
    home, _ = settings.dagster_home()
    instance_line = _instance_line()  # before DAGSTER_HOME is set below, so it says why this instance
    try:
        with _dagster_home(home):
            args.instance_line = instance_line
            if args.command not in RUN_COMMANDS:
                return int(args.func(args))
            print(instance_line, flush=True)
            with _capture_run_output(args.command, verbose, args.log_level) as log:
                return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except CommandFailed as failure:
        return _report(str(failure), failure.code, log, failure.run_id)
    except Exception as error:
        if log is not None:
            with log.path.open("a", encoding="utf-8") as handle:
                handle.write(traceback.format_exc())
        if verbose:
            raise
        message = _expected_failure(error, _database(args))
        if message is not None:
            return _report(message, BAD_INPUT_EXIT, log)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        hint = "the traceback is in the log" if log is not None else "rerun with --verbose for the traceback"
        return _report(
            f"internal error ({type(error).__name__}: {first}); this is a bug: {hint}", INTERNAL_ERROR_EXIT, log
        )
    finally:
        if args.command == "materialize":
            signal.signal(signal.SIGTERM, previous_sigterm)


def _report(message: str, code: int, log: _RunLog | None, run_id: str | None = None) -> int:
    """Print the one ``error:`` sentence, and for a run command the line saying where its full log is."""
    print(f"error: {message}" if code != INTERRUPTED_EXIT else message, file=sys.stderr)
    if log is not None:
        run = f"; run {run_id} is in the run list of `make ui`" if run_id else ""
        print(f"full log: {log.path}{run}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
