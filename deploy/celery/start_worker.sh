#!/usr/bin/env bash
# One celery worker of the cluster profile (docs/deployment.md, "Stage 3"): run it on every worker machine,
# from a checkout with the project installed (`pip install -e ".[cluster]"`), with the same environment as the
# launching machine: DAGSTER_HOME (the shared instance), CURATORNET_DATA_DIR (the shared data folder),
# CURATORNET_SOURCE and CURATORNET_CELERY_BROKER.
#
#   deploy/celery/start_worker.sh NAME [QUEUE ...]      e.g. start_worker.sh cpu-1 cpu   or   start_worker.sh gpu-1 gpu
#
# Each worker runs one step at a time (--concurrency 1): a step already uses every core through torch's threads.
set -euo pipefail
cd "$(dirname "$0")/../.."
name="${1:?usage: start_worker.sh NAME [QUEUE ...]}"
shift
queues=()
for queue in "${@:-cpu}"; do queues+=(-q "$queue"); done
: "${CURATORNET_CELERY_BROKER:?set CURATORNET_CELERY_BROKER, e.g. redis://redis-host:6379/0}"
export CURATORNET_EXECUTOR=celery
exec dagster-celery worker start -A dagster_celery.app -y deploy/celery/celery.yaml -n "$name" "${queues[@]}" -- --concurrency 1
