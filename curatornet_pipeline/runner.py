"""Materialize the whole graph from Python or the command line, through the real Dagster job."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dagster as dg

from curatornet_pipeline import pool_wait  # noqa: F401  (in-process runs wait for pool slots responsively)
from curatornet_pipeline.executors import launches_in_this_process
from curatornet_pipeline.instance_health import release_dead_runs, this_process_tags
from curatornet_pipeline.jobs import FULL_REFRESH_JOB, SERVING_REFRESH_JOB


def _execute_job(
    defs: dg.Definitions,
    job_name: str,
    *,
    instance: dg.DagsterInstance | None,
    run_config: Mapping | None,
    raise_on_error: bool,
    report: Callable[[str], None] | None,
) -> dg.ExecuteInProcessResult:
    """Run ``job_name`` in this process after clearing runs whose process died (their pool slots freed).

    A killed earlier run therefore cannot block this one; ``report`` receives one line per run it cleared.
    """
    job = defs.resolve_job_def(job_name)
    if instance is not None:
        for message in release_dead_runs(instance):
            if report:
                report(message)
    if launches_in_this_process():
        result = job.execute_in_process(
            instance=instance,
            run_config=dict(run_config or {}),
            tags=this_process_tags(),
            raise_on_error=raise_on_error,
        )
    else:
        result = _execute_with_configured_executor(job_name, instance, run_config, raise_on_error)
    if instance is not None and instance.event_log_storage.supports_global_concurrency_limits:
        # The run is over in this process; a step that was interrupted must not keep its slot.
        instance.event_log_storage.free_concurrency_slots_for_run(result.run_id)
    return result


def _execute_with_configured_executor(
    job_name: str, instance: dg.DagsterInstance | None, run_config: Mapping | None, raise_on_error: bool
) -> dg.ExecuteJobResult:
    """Run through the job's own executor (multiprocess, celery): steps run in other processes.

    Those processes rebuild the job from ``definitions.job_named`` with the code location of their own
    environment (the same settings: data folder, source, executor), and record their events in the instance
    this process uses, so it must be a persistent one they can open too.
    """
    if instance is None or instance.is_ephemeral:
        raise RuntimeError(
            "the multiprocess and celery executors need a persistent Dagster instance that every worker opens: "
            "set DAGSTER_HOME (make sets it to .dagster_home)"
        )
    job = dg.build_reconstructable_job(
        "curatornet_pipeline.definitions", "job_named", reconstructable_args=(job_name,)
    )
    return dg.execute_job(
        job, instance=instance, run_config=dict(run_config or {}), tags=this_process_tags(), raise_on_error=raise_on_error
    )


def materialize_everything(
    defs: dg.Definitions,
    *,
    instance: dg.DagsterInstance | None = None,
    run_config: Mapping | None = None,
    raise_on_error: bool = True,
    report: Callable[[str], None] | None = None,
    job_name: str = FULL_REFRESH_JOB,
) -> dg.ExecuteInProcessResult:
    """Run the full-refresh job (every asset, every check, all six triplet partitions).

    Steps run in this process, or where CURATORNET_EXECUTOR sends them (executors.py); there ``defs`` only
    names the job, which every process rebuilds from its environment.

    The job's own tags carry the six-partition range, as they do for a launch from the UI. ``job_name``
    runs another asset job of ``defs`` instead (the cold-start job).
    """
    return _execute_job(
        defs, job_name, instance=instance, run_config=run_config, raise_on_error=raise_on_error, report=report
    )


def refresh_serving(
    defs: dg.Definitions,
    *,
    instance: dg.DagsterInstance | None = None,
    run_config: Mapping | None = None,
    raise_on_error: bool = True,
    report: Callable[[str], None] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the fast path (source files, then the serving group: no training) in this process."""
    return _execute_job(
        defs,
        SERVING_REFRESH_JOB,
        instance=instance,
        run_config=run_config,
        raise_on_error=raise_on_error,
        report=report,
    )
