"""The Dagster code location: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import warnings

import dagster as dg

from curatornet_pipeline import pool_wait  # noqa: F401  (runs wait for pool slots responsively)
from curatornet_pipeline.assets import cold_start, evaluation, features, ingest, model, online, serving, split, triplets
from curatornet_pipeline.automation import apply_freshness_policies, refresh_schedule, source_files_sensor
from curatornet_pipeline.checks import cold_start as cold_start_checks
from curatornet_pipeline.checks import evaluation as evaluation_checks
from curatornet_pipeline.checks import foundation as foundation_checks
from curatornet_pipeline.checks import model as model_checks
from curatornet_pipeline.checks import online as online_checks
from curatornet_pipeline.checks import serving as serving_checks
from curatornet_pipeline.checks import triplets as triplet_checks
from curatornet_pipeline.executors import configured_executor
from curatornet_pipeline.jobs import cold_start_job, full_refresh_job, online_metrics_job, serving_refresh_job
from curatornet_pipeline.resources import default_resources

ALL_ASSETS = [
    ingest.source_files,
    ingest.raw_tables,
    features.resnet50_embeddings,
    features.visual_clusters,
    split.last_basket_split,
    triplets.triplets,
    triplets.training_triplets,
    triplets.random_triplets,
    model.curatornet_model,
    model.curatornet_random_sampling_model,
    model.vbpr_model,
    model.vbpr_random_sampling_model,
    model.item_and_user_vectors,
    evaluation.evaluate,
    evaluation.metric_table,
    evaluation.figure_3,
    evaluation.recommendation_gallery,
    cold_start.new_customer_metrics,
    cold_start.new_artwork_metrics,
    serving.inventory,
    serving.serving_embeddings,
    serving.serving_item_vectors,
    serving.served_recommendations,
    serving.similar_artworks,
    serving.serving_snapshot,
    online.online_metrics,
]

# Who answers for the assets: set here, once, for every asset of the code location.
OWNERS = ["team:curatornet"]


def with_owners(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec.replace_attributes(owners=OWNERS)


def prepared_assets(assets: list) -> list:
    """The assets as the UI shows them: owned, with freshness policies, linked to the code that defines them."""
    owned = apply_freshness_policies(list(dg.map_asset_specs(with_owners, assets)))
    with warnings.catch_warnings():
        # Code references are a beta API of the pinned release; it works, one notice per asset only adds noise.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return list(dg.with_source_code_references(owned))


ALL_CHECKS = dg.load_asset_checks_from_modules(
    [foundation_checks, triplet_checks, model_checks, evaluation_checks, serving_checks, cold_start_checks, online_checks]
)


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """The code location; tests pass their own resources (temporary DuckDB file, tiny demo gallery)."""
    return dg.Definitions(
        assets=prepared_assets(ALL_ASSETS),
        asset_checks=ALL_CHECKS,
        jobs=[full_refresh_job, serving_refresh_job, cold_start_job, online_metrics_job],
        schedules=[refresh_schedule],
        sensors=[source_files_sensor],
        resources=resources if resources is not None else default_resources(),
        # CURATORNET_EXECUTOR: in-process by default; multiprocess or celery workers (executors.py).
        executor=configured_executor(),
    )


defs = build_definitions()


def job_named(name: str) -> dg.JobDefinition:
    """One job of the code location; how worker processes rebuild a run's job (runner.launch_run)."""
    return defs.resolve_job_def(name)
