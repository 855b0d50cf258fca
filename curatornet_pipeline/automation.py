"""What keeps the recommender fresh: a scheduled full refresh, a sensor on the source files, freshness policies.

- ``refresh_schedule`` retrains everything on a cron (daily at 03:00 UTC by default). It is ON by default:
  the product promise is a model that keeps up with new purchases and uploads without anyone pressing a
  button, and a schedule only fires while the Dagster daemon runs (``make ui`` / ``dagster dev``), so a
  plain ``make run`` or ``make test`` never triggers it.
- ``source_files_sensor`` starts the fast path (``curatornet_serving_refresh``: no retraining, seconds) once per
  change of the input files (new purchases, a new inventory, added images, visitor likes, a new
  ``resnet_embeddings.npy``), so served recommendations follow new data within a minute, while the model
  itself is retrained on the schedule.
- ``MODEL_FRESHNESS`` marks the model and metric assets stale in the UI (WARN, then FAIL) when the refresh
  has stopped succeeding. Apply it with :func:`apply_freshness_policies` to the code location's assets.

The schedule skips while a full refresh is queued or running; the sensor waits while either refresh is: a
refresh takes its inputs when it starts, so a second one would redo the same work, and the DuckDB file admits
one writer at a time anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import dagster as dg

from curatornet_pipeline.core.fingerprint import SOURCE_FILE_NAMES, source_fingerprint
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB, SERVING_REFRESH_JOB
from curatornet_pipeline.resources import GallerySource

REFRESH_CRON_ENV = "CURATORNET_REFRESH_CRON"
REFRESH_TIMEZONE_ENV = "CURATORNET_REFRESH_TIMEZONE"
FRESHNESS_WARN_HOURS_ENV = "CURATORNET_FRESHNESS_WARN_HOURS"
FRESHNESS_FAIL_HOURS_ENV = "CURATORNET_FRESHNESS_FAIL_HOURS"

DEFAULT_REFRESH_CRON = "0 3 * * *"
DEFAULT_REFRESH_TIMEZONE = "UTC"
# A daily refresh that succeeds is at most 24 h old plus the length of the run; 26 h leaves two hours for
# a paper-scale run, and 50 h means a whole day's refresh was missed (the next one has failed too).
DEFAULT_FRESHNESS_WARN_HOURS = 26.0
DEFAULT_FRESHNESS_FAIL_HOURS = 50.0
# Asset groups whose staleness a user must see: the trained model, its vectors, recommendations, metrics.
FRESHNESS_GROUPS = ("model", "evaluation")
# Fingerprinting reads every source CSV; once a minute is quick enough for new data and cheap at paper size.
SENSOR_INTERVAL_SECONDS = 60

REFRESH_SCHEDULE_NAME = "curatornet_daily_refresh"
SOURCE_SENSOR_NAME = "curatornet_source_files_sensor"
TRIGGER_TAG = "curatornet/trigger"
SOURCE_DIGEST_TAG = "curatornet/source_digest"
CHANGED_FILES_TAG = "curatornet/changed_files"
# The asset whose latest materialization says which files the pipeline last ingested.
SOURCE_FILES_KEY = dg.AssetKey("source_files")

# Queued and launched runs: a refresh in any of these states will (re)read the source files itself.
_IN_FLIGHT_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def refresh_runs_in_flight(instance: dg.DagsterInstance, job_name: str = FULL_REFRESH_JOB) -> list[str]:
    """Ids of runs of ``job_name`` (default: the full refresh) that are queued or running on ``instance``."""
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name, statuses=_IN_FLIGHT_STATUSES), limit=5)
    return [record.dagster_run.run_id for record in records]


def _refresh_tags(trigger: str) -> dict[str, str]:
    # The range tags make one run cover all six triplet partitions (see jobs.py).
    return {**ALL_STRATEGIES_TAGS, TRIGGER_TAG: trigger}


# ---------------------------------------------------------------------------------------------- schedule


def build_refresh_schedule(cron: str | None = None, timezone: str | None = None) -> dg.ScheduleDefinition:
    """The full-refresh schedule; ``cron``/``timezone`` default to the environment, then to 03:00 UTC daily."""
    cron = cron or os.environ.get(REFRESH_CRON_ENV) or DEFAULT_REFRESH_CRON
    timezone = timezone or os.environ.get(REFRESH_TIMEZONE_ENV) or DEFAULT_REFRESH_TIMEZONE

    try:
        decorate = dg.schedule(
            name=REFRESH_SCHEDULE_NAME,
            cron_schedule=cron,
            execution_timezone=timezone,
            job_name=FULL_REFRESH_JOB,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=(
                f"The slow cadence: retrain and re-evaluate everything on '{cron}' ({timezone}); set "
                f"{REFRESH_CRON_ENV} to change it. New purchases, uploads and likes reach the served recommendations "
                "sooner through the source-files sensor's fast path. Skips a tick while a full refresh is still "
                "queued or running."
            ),
        )

        @decorate
        def refresh_tick(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
            busy = refresh_runs_in_flight(context.instance)
            if busy:
                return dg.SkipReason(f"full refresh {busy[0]} is still queued or running; this tick is not needed")
            return dg.RunRequest(tags=_refresh_tags("schedule"))

    except (dg.DagsterInvalidDefinitionError, dg.DagsterInvariantViolationError) as error:
        raise ValueError(
            f"{REFRESH_CRON_ENV}={cron!r} / {REFRESH_TIMEZONE_ENV}={timezone!r} is not a usable schedule: {error}"
        ) from error
    return refresh_tick


refresh_schedule = build_refresh_schedule()


# ------------------------------------------------------------------------------------------------ sensor


def source_state_digest(folder: Path, fingerprint: dict[str, str]) -> str:
    """One hex digest for the source folder and the fingerprints of its files (the sensor's cursor)."""
    canonical = json.dumps({"folder": str(folder), "files": fingerprint}, sort_keys=True)
    return hashlib.sha1(canonical.encode()).hexdigest()


def _materialized_state(instance: dg.DagsterInstance) -> tuple[Path, dict[str, str]] | None:
    """(folder, fingerprints) as the latest ``source_files`` materialization recorded them, if any."""
    event = instance.get_latest_materialization_event(SOURCE_FILES_KEY)
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    if "folder" not in metadata or "fingerprints" not in metadata:
        return None
    return Path(metadata["folder"].value), dict(metadata["fingerprints"].value)


def changed_files(folder: Path, fingerprint: dict[str, str], ingested: tuple[Path, dict[str, str]] | None) -> list[str]:
    """Names of the source files (``images/`` for the folder) that differ from what was last ingested.

    Compared with the latest ``source_files`` materialization, not with the previous tick, so a change seen
    while a refresh failed is still named on the next one. Without an earlier ingest of ``folder``, every file
    is new.
    """
    if ingested is None or ingested[0] != folder:
        return sorted(fingerprint)
    before = ingested[1]
    return sorted(name for name in set(before) | set(fingerprint) if before.get(name) != fingerprint.get(name))


def change_run_key(previous_digest: str | None, current_digest: str) -> str:
    """Run key of one change: the same transition never starts two runs, but A -> B -> A starts three."""
    return f"{(previous_digest or 'initial')[:12]}->{current_digest[:12]}"


@dg.sensor(
    name=SOURCE_SENSOR_NAME,
    job_name=SERVING_REFRESH_JOB,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "The fast cadence (checks every minute): starts the serving refresh (no retraining: new images embedded, "
        "vectors and every user's top-k recomputed with the current model) once per change of the source files "
        "(purchases/inventory or items/interactions CSVs, likes.csv from the visitor app, resnet_embeddings.npy, "
        "the images folder) in the folder of the `gallery` resource. Nothing is started for files that the "
        "latest source_files materialization already saw, nor while a refresh runs. The retrain runs on the "
        "schedule."
    ),
)
def source_files_sensor(context: dg.SensorEvaluationContext, gallery: GallerySource) -> dg.SensorResult | dg.SkipReason:
    try:
        folder = gallery.folder()
    except FileNotFoundError as error:
        return dg.SkipReason(str(error))
    if not folder.is_dir():
        return dg.SkipReason(
            f"source folder {folder} does not exist yet (the demo gallery is written by the first run)"
        )
    fingerprint = source_fingerprint(folder)
    if not any(name in fingerprint for name in SOURCE_FILE_NAMES if name.endswith(".csv")):
        return dg.SkipReason(f"{folder} holds none of the source CSV files yet")
    current = source_state_digest(folder, fingerprint)
    if context.cursor == current:
        return dg.SkipReason(f"no change in {folder} since the last tick")
    busy = refresh_runs_in_flight(context.instance) + refresh_runs_in_flight(context.instance, SERVING_REFRESH_JOB)
    if busy:
        # Keep the old cursor: once the run ends, the next tick compares what it ingested with the files.
        return dg.SkipReason(f"refresh {busy[0]} is queued or running; will compare the files after it ends")
    ingested = _materialized_state(context.instance)
    if ingested is not None and source_state_digest(*ingested) == current:
        return dg.SensorResult(
            skip_reason=f"the latest source_files materialization already ingested these files ({current[:12]})",
            cursor=current,
        )
    changed = changed_files(folder, fingerprint, ingested)
    what = "not ingested yet" if ingested is None or ingested[0] != folder else "changed since the last ingest"
    context.log.info(f"source files in {folder} {what}: {', '.join(changed)}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=change_run_key(context.cursor, current),
                tags={
                    TRIGGER_TAG: "source_files_sensor",
                    SOURCE_DIGEST_TAG: current,
                    CHANGED_FILES_TAG: ",".join(changed),
                },
            )
        ],
        cursor=current,
    )


# --------------------------------------------------------------------------------------------- freshness


def _hours_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of hours") from None


def build_model_freshness(warn_hours: float | None = None, fail_hours: float | None = None) -> dg.FreshnessPolicy:
    """WARN after ``warn_hours`` without a new materialization, FAIL after ``fail_hours``.

    Defaults come from ``CURATORNET_FRESHNESS_WARN_HOURS`` / ``CURATORNET_FRESHNESS_FAIL_HOURS``, then 26 h
    and 50 h, which fit the daily default schedule; change them together with ``CURATORNET_REFRESH_CRON``.
    """
    if warn_hours is None:
        warn_hours = _hours_from_env(FRESHNESS_WARN_HOURS_ENV, DEFAULT_FRESHNESS_WARN_HOURS)
    if fail_hours is None:
        fail_hours = _hours_from_env(FRESHNESS_FAIL_HOURS_ENV, DEFAULT_FRESHNESS_FAIL_HOURS)
    warn, fail = warn_hours, fail_hours
    if not 0 < warn < fail:
        raise ValueError(
            f"freshness windows must satisfy 0 < warn < fail hours, got warn={warn} ({FRESHNESS_WARN_HOURS_ENV}) "
            f"and fail={fail} ({FRESHNESS_FAIL_HOURS_ENV})"
        )
    return dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=fail), warn_window=timedelta(hours=warn))


MODEL_FRESHNESS = build_model_freshness()


def with_model_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    """``spec`` with ``MODEL_FRESHNESS`` when it belongs to a model or evaluation group (an explicit policy wins)."""
    if spec.group_name in FRESHNESS_GROUPS:
        return dg.apply_freshness_policy(spec, MODEL_FRESHNESS, overwrite_existing=False)
    return spec


def apply_freshness_policies(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The same assets with ``MODEL_FRESHNESS`` on every asset of the model and evaluation groups."""
    return list(dg.map_asset_specs(with_model_freshness, assets))
