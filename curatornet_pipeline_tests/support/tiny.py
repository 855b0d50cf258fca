"""The tiny demo run every whole-graph test uses: its run config, its resources, and one materialization."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.resources import CuratorDuckDB, GallerySource
from curatornet_pipeline.runner import materialize_everything

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


def tiny_run_config(**overrides: dict) -> dict:
    ops = copy.deepcopy(TINY_OPS_CONFIG)
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
    result: dg.ExecuteInProcessResult


def materialize_tiny(data_dir: Path) -> Materialized:
    """The whole graph materialized on the tiny demo gallery into ``data_dir``, through the real job."""
    defs = build_definitions(tiny_resources(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_everything(defs, instance=instance, run_config=tiny_run_config())
    return Materialized(data_dir, data_dir / "curatornet.duckdb", defs, result)
