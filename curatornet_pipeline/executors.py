"""Where a run's steps execute: in the launching process, one process per step, or on celery workers.

``CURATORNET_EXECUTOR`` picks one for every job of the code location (docs/deployment.md):

* ``in_process`` (default): one process runs the whole plan. On two cores this is the fastest (each step
  of the other executors pays a fresh process that imports dagster and torch).
* ``multiprocess``: Dagster's multiprocess executor, independent steps in parallel on one machine.
* ``celery``: Dagster's celery executor with Redis as broker (``CURATORNET_CELERY_BROKER``): steps are
  queued and workers on any machine that mounts the data folder and reaches the instance run them. Steps
  go to the ``cpu`` queue; with ``CURATORNET_GPU_QUEUE`` set, the ResNet50 embedding and training steps go
  to that queue instead, for workers on GPU machines.

The pools of the instance (dagster.yaml) bound every executor alike: a step waits for its pool's slot
whichever process runs it.
"""

from __future__ import annotations

import dagster as dg

from curatornet_pipeline import settings

# The tag dagster-celery routes a step by (dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG; spelled out so the
# code location imports without the optional celery dependency).
CELERY_QUEUE_TAG = "dagster-celery/queue"


# Celery settings of the launching side; deploy/celery/celery.yaml gives the workers the same ones.
CELERY_SETTINGS = {
    # Steps without a queue tag go to "cpu"; workers name the queues they take (-q cpu / -q gpu).
    "task_default_queue": settings.CPU_QUEUE,
    # A step is acknowledged when it ends, and handed to another worker process when the one running it dies
    # (kill -9, out of memory): dagster-celery waits forever for a task that was taken and lost. A step's
    # writes are atomic, so running it again is safe.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
}


def accelerated_step_tags() -> dict[str, str]:
    """Op tags of the steps that want an accelerator (embedding, training): their celery queue, when set."""
    queue = settings.gpu_queue()
    return {CELERY_QUEUE_TAG: queue} if queue else {}


def configured_executor() -> dg.ExecutorDefinition:
    """The executor of every job, from ``CURATORNET_EXECUTOR``."""
    choice = settings.executor_setting()
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "celery":
        try:
            from dagster_celery import celery_executor
        except ImportError:
            raise RuntimeError(
                f"{settings.EXECUTOR_ENV}=celery needs the cluster extra: pip install -e '.[cluster]'"
            ) from None
        broker = settings.celery_broker()
        return celery_executor.configured(
            {
                "broker": broker,
                "backend": broker,
                "config_source": CELERY_SETTINGS,
            }
        )
    return dg.in_process_executor


def launches_in_this_process() -> bool:
    """Whether a run's steps all execute in the process that starts it (``execute_in_process`` suffices)."""
    return settings.executor_setting() == "in_process"
