"""The job that refreshes the whole graph in one run, and the tags that make it cover all six strategies."""

from __future__ import annotations

import dagster as dg

from curatornet_pipeline.core.sampling import STRATEGIES

FULL_REFRESH_JOB = "curatornet_full_refresh"

# The triplets asset has a single-run backfill policy, so one run can materialize all six partitions
# together with the unpartitioned assets around them. The tags go on each run request (schedule, sensor,
# `curatornet materialize`) rather than on the job, so the job can still run one partition alone.
ALL_STRATEGIES_TAGS = {
    "dagster/asset_partition_range_start": STRATEGIES[0],
    "dagster/asset_partition_range_end": STRATEGIES[-1],
}

full_refresh_job = dg.define_asset_job(
    FULL_REFRESH_JOB,
    selection=dg.AssetSelection.all(),
    description="Refresh everything downstream of the source data: ingest, split, clusters, triplets, training, "
    "embeddings, evaluation. Launch it with the ALL_STRATEGIES_TAGS range tags to cover all six triplet "
    "partitions in one run, or with a partition key to resample one strategy.",
)

SERVING_REFRESH_JOB = "curatornet_serving_refresh"
SERVING_GROUP = "serving"

# The fast path: the source files, then the serving group only. Nothing here trains, clusters or samples.
serving_refresh_job = dg.define_asset_job(
    SERVING_REFRESH_JOB,
    selection=dg.AssetSelection.assets("source_files") | dg.AssetSelection.groups(SERVING_GROUP),
    description="The fast path, seconds instead of a retrain: re-read the source files (purchases, inventory, "
    "likes), embed only images never embedded before, then item vectors, user vectors, available artworks, "
    "every user's top-k and 'more like this' with the current serving model, and publish the app's snapshot. "
    "Started by the source-files sensor on every change and by `curatornet refresh`; the model and evaluation "
    "tables are not touched (the full retrain, curatornet_full_refresh, runs on the schedule).",
)
