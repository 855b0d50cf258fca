"""The tiny demo run every whole-graph test uses: its run config, its resources, and one materialization."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.resources import CuratorDuckDB, GallerySource
from curatornet_pipeline.jobs import COLD_START_JOB
from curatornet_pipeline.runner import materialize_everything

COLD_START_ASSETS = ("new_customer_metrics", "new_artwork_metrics")

# Sizes that keep a whole-graph run in well under a minute on two cores.
TINY_OPS_CONFIG = {
    "resnet50_embeddings": {"config": {"image_size": 32, "batch_size": 32}},
    "visual_clusters": {"config": {"n_clusters": 4, "n_runs": 3, "pca_components": 8}},
    "triplets": {"config": {"total_train_triplets": 1200}},
    "random_triplets": {"config": {"total_train_triplets": 1200}},
    "curatornet_model": {"config": {"max_epochs": 3, "batch_size": 256}},
    "curatornet_random_sampling_model": {"config": {"max_epochs": 2, "batch_size": 256}},
    "vbpr_model": {"config": {"max_epochs": 3, "batch_size": 256}},
    "vbpr_random_sampling_model": {"config": {"max_epochs": 3, "batch_size": 256}},
}
# The cold-start job (run after the full refresh) retrains two models per protocol: the same tiny sizes.
_TINY_COLD_START = {"total_train_triplets": 1200, "max_epochs": 3, "batch_size": 256, "fold_in_steps": 30}
TINY_COLD_START_OPS_CONFIG = {op: {"config": dict(_TINY_COLD_START)} for op in COLD_START_ASSETS}
# The tiny gallery has about ten repeat buyers: half of them, so that the t-tests have users to pair.
TINY_COLD_START_OPS_CONFIG["new_customer_metrics"]["config"]["held_out_fraction"] = 0.5


def tiny_run_config(ops_config: dict | None = None, **overrides: dict) -> dict:
    ops = copy.deepcopy(TINY_OPS_CONFIG if ops_config is None else ops_config)
    for op, config in overrides.items():
        ops.setdefault(op, {"config": {}})["config"].update(config)
    # Dagster's console log at WARNING keeps test output readable; failures still carry the full error.
    return {"ops": ops, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def tiny_resources(data_dir: Path, source: str = "demo") -> dict:
    return {
        "duckdb": CuratorDuckDB(database=str(data_dir / "curatornet.duckdb")),
        "gallery": GallerySource(source=source, data_dir=str(data_dir), demo_scale="tiny"),
    }


@dataclass
class Materialized:
    data_dir: Path
    database: Path
    defs: dg.Definitions
    result: dg.ExecuteInProcessResult  # the full refresh
    cold_start: dg.ExecuteInProcessResult  # the cold-start job, run after it on the same file


def materialize_tiny(data_dir: Path) -> Materialized:
    """The whole graph materialized on the tiny demo gallery into ``data_dir``, through the real jobs: the full
    refresh, then the cold-start job."""
    defs = build_definitions(tiny_resources(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_everything(defs, instance=instance, run_config=tiny_run_config())
        cold_start = materialize_everything(
            defs, instance=instance, run_config=tiny_run_config(TINY_COLD_START_OPS_CONFIG), job_name=COLD_START_JOB
        )
    return Materialized(data_dir, data_dir / "curatornet.duckdb", defs, result, cold_start)
