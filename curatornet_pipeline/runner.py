"""Materialize the whole graph from Python or the command line, through the real Dagster job."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import dagster as dg

from curatornet_pipeline import pool_wait  # noqa: F401  (in-process runs wait for pool slots responsively)
from curatornet_pipeline.instance_health import release_dead_runs, this_process_tags
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB


def materialize_everything(
    defs: dg.Definitions,
    *,
    instance: dg.DagsterInstance | None = None,
    run_config: Mapping | None = None,
    raise_on_error: bool = True,
    report: Callable[[str], None] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the full-refresh job (every asset, every check, all six triplet partitions) in this process.

    Runs of ``instance`` whose process died are marked failed first (their pool slots freed), so a killed
    earlier run cannot block this one; ``report`` receives one line per run it cleared.
    """
    job = defs.resolve_job_def(FULL_REFRESH_JOB)
    if instance is not None:
        for message in release_dead_runs(instance):
            if report:
                report(message)
    result = job.execute_in_process(
        instance=instance,
        run_config=dict(run_config or {}),
        tags={**ALL_STRATEGIES_TAGS, **this_process_tags()},
        raise_on_error=raise_on_error,
    )
    if instance is not None and instance.event_log_storage.supports_global_concurrency_limits:
        # The run is over in this process; a step that was interrupted must not keep its slot.
        instance.event_log_storage.free_concurrency_slots_for_run(result.run_id)
    return result
