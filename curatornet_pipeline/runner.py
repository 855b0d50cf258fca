"""Materialize the whole graph from Python or the command line, through the real Dagster job."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB, SERVING_REFRESH_JOB


def materialize_everything(
    defs: dg.Definitions,
    *,
    instance: dg.DagsterInstance | None = None,
    run_config: Mapping | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Run the full-refresh job (every asset, every check, all six triplet partitions) in this process."""
    job = defs.resolve_job_def(FULL_REFRESH_JOB)
    return job.execute_in_process(
        instance=instance,
        run_config=dict(run_config or {}),
        tags=ALL_STRATEGIES_TAGS,
        raise_on_error=raise_on_error,
    )


def refresh_serving(
    defs: dg.Definitions,
    *,
    instance: dg.DagsterInstance | None = None,
    run_config: Mapping | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Run the fast path (source files, then the serving group: no training) in this process."""
    job = defs.resolve_job_def(SERVING_REFRESH_JOB)
    return job.execute_in_process(instance=instance, run_config=dict(run_config or {}), raise_on_error=raise_on_error)
