"""The jobs: the whole graph in one run (with the tags that cover all six strategies), the fast serving path,
and the cold-start evaluation, which retrains its own models and so runs apart from the full refresh."""

from __future__ import annotations

import dagster as dg

from curatornet_pipeline.core.sampling import STRATEGIES

FULL_REFRESH_JOB = "curatornet_full_refresh"

# The triplets asset has a single-run backfill policy, so one run can materialize all six partitions
# together with the unpartitioned assets around them. The job carries this range as its own tags, so a
# launch from the UI (Jobs -> curatornet_full_refresh -> Launchpad -> Launch Run -> Confirm "without a
# partition") needs nothing added.
# One strategy alone is resampled from the triplets asset's page (Materialize -> one partition), whose run
# is not this job's and so carries no range.
ALL_STRATEGIES_TAGS = {
    "dagster/asset_partition_range_start": STRATEGIES[0],
    "dagster/asset_partition_range_end": STRATEGIES[-1],
}

COLD_START_JOB = "curatornet_cold_start"
COLD_START_GROUP = "cold_start"

full_refresh_job = dg.define_asset_job(
    FULL_REFRESH_JOB,
    # The cold-start group trains four more models (two per protocol): it has its own job, below.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(COLD_START_GROUP),
    tags=ALL_STRATEGIES_TAGS,
    description="The full retrain, in one run: source files, ingest, split, embeddings and clusters, the triplets "
    f"of all six sampling strategies ({STRATEGIES[0]} to {STRATEGIES[-1]}), every model, the evaluation and the "
    "serving tables (not the cold-start group: curatornet_cold_start). Launch it as it is: Launchpad -> Launch Run, and Confirm when asked about the partition; it "
    "needs no config and no tags (its own tags cover every strategy). To resample one strategy alone, "
    "materialize that partition from the triplets asset's page instead.",
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

ONLINE_METRICS_JOB = "curatornet_online_metrics"
ONLINE_GROUP = "online"

# Online metrics alone (they also run at the end of every full refresh): after visitors used the app.
online_metrics_job = dg.define_asset_job(
    ONLINE_METRICS_JOB,
    selection=dg.AssetSelection.groups(ONLINE_GROUP),
    description="Click-through and conversion of recommended works per model version and list position, from the "
    "views, clicks, likes and purchases recorded since (seconds; it reads files only). Launchpad -> Launch Run, no "
    "config needed; from a shell, `curatornet materialize --job curatornet_online_metrics`.",
)

cold_start_job = dg.define_asset_job(
    COLD_START_JOB,
    selection=dg.AssetSelection.groups(COLD_START_GROUP),
    description="CuratorNet for customers and artworks the models never saw: new_customer_metrics (20% of the repeat "
    "buyers held out of all training) and new_artwork_metrics (train before a cut-off time, evaluate after it), each "
    "retraining CuratorNet and VBPR on its own training view. Run it after a full refresh (it reads the split, the "
    "embeddings and the clusters): Launchpad -> Launch Run, no config needed; from a shell, `curatornet materialize "
    "--job curatornet_cold_start`. About twice the model training time of the full refresh.",
)
