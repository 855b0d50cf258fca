"""Waiting for the ``duckdb`` pool slot in an in-process run: visibly, interruptibly, and never behind a dead run.

Dagster 1.13's in-process executor waits for a pool slot in a loop that (a) never sleeps, because
``InstanceConcurrencyContext.interval_to_next_pending_claim_check`` returns ``min(0, ...)``, so it spins a
core, (b) never looks at the Ctrl-C/SIGTERM it captured (only steps raise interrupts), so only SIGKILL
stops it, and (c) says nothing about who holds the slot. Every run of this project goes through that loop:
``curatornet materialize`` (``execute_in_process`` always uses the in-process executor) and the runs the UI
launches (the code location's executor is ``in_process_executor``).

``install()`` points ``dagster._core.executor.in_process`` at an iterator that uses the context below.
It is applied only to the exact Dagster release it was written against (the project pins it); on any other
release it does nothing and the tests of this behaviour fail, which is the signal to re-check it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.execution.plan import instance_concurrency_context as concurrency_module
from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator
from dagster._core.executor import in_process as in_process_module
from dagster._utils.interrupts import pop_captured_interrupt

from curatornet_pipeline.instance_health import (
    recorded_process_alive,
    release_dead_runs,
    slot_holders,
    this_process_tags,
)

PATCHED_DAGSTER_VERSION = "1.13.27"
# How often a waiting run wakes to notice Ctrl-C, and how often it re-reads who holds the slot.
POLL_SECONDS = 0.25
HOLDER_CHECK_SECONDS = 5.0
REMIND_SECONDS = 60.0


class ResponsivePoolWait(concurrency_module.InstanceConcurrencyContext):
    def __init__(self, instance: dg.DagsterInstance, dagster_run: dg.DagsterRun, log: Callable[[str], None]):
        super().__init__(instance, dagster_run)
        self._log = log
        self._last_holder_check = 0.0
        self._last_message: tuple[str, float] = ("", 0.0)

    def claim(self, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        if pop_captured_interrupt():
            raise DagsterExecutionInterruptedError(f"interrupted while waiting for the '{concurrency_key}' pool slot")
        claimed = super().claim(concurrency_key, step_key, step_priority)
        if not claimed and time.monotonic() - self._last_holder_check >= HOLDER_CHECK_SECONDS:
            self._last_holder_check = time.monotonic()
            self._look_at_holders(concurrency_key, step_key)
        return claimed

    def _look_at_holders(self, pool: str, step_key: str) -> None:
        holders = [h for h in slot_holders(self._instance, pool) if h.run_id != self._run_id]
        if any(h.alive is False for h in holders):
            for message in release_dead_runs(self._instance):
                self._log(f"{message}")
            # Ask for the slot again at once instead of after the backoff.
            self._pending_timeouts[step_key] = 0.0
            return
        who = "; ".join(
            f"run {h.run_id} step {h.step_key} ({h.process}, status {h.run_status or 'unknown run'})" for h in holders
        )
        message = (
            f"step {step_key} waits for the '{pool}' pool slot, held by {who or 'nobody (slot being handed over)'}. "
            "Ctrl-C stops this run; `curatornet doctor` shows the slot holders and `curatornet unlock --run-id ID` "
            "frees a slot whose run is gone"
        )
        previous, when = self._last_message
        if message != previous or time.monotonic() - when >= REMIND_SECONDS:
            self._last_message = (message, time.monotonic())
            self._log(message)

    def interval_to_next_pending_claim_check(self) -> float:
        if not self._pending_claims:
            return 0.0
        now = time.time()
        next_check = min((ready - now for ready in self._pending_timeouts.values()), default=0.0)
        return min(max(next_check, 0.0), POLL_SECONDS)


def responsive_inprocess_execution_iterator(job_context, execution_plan, instance_concurrency_context=None) -> Iterator:
    """Dagster's ``inprocess_execution_iterator`` with the context above, after tagging the run with this process."""
    instance = job_context.instance
    if recorded_process_alive(dict(job_context.dagster_run.tags)) is not True:
        instance.add_run_tags(job_context.run_id, this_process_tags())
    with ResponsivePoolWait(instance, job_context.dagster_run, job_context.log.warning) as context:
        yield from inner_plan_execution_iterator(job_context, execution_plan, context)


def install() -> bool:
    """Route in-process runs through the responsive wait; False when this Dagster release is not the one checked."""
    if dg.__version__ != PATCHED_DAGSTER_VERSION:
        return False
    in_process_module.inprocess_execution_iterator = responsive_inprocess_execution_iterator
    return True


install()
