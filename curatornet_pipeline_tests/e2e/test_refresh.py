"""The fast path end to end: new purchases, likes and images reach the served recommendations without retraining."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from PIL import Image

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline.runner import refresh_serving
from curatornet_pipeline.snapshot import load_snapshot, snapshot_path
from curatornet_pipeline_tests.support.processes import make_dagster_home
from curatornet_pipeline_tests.support.tiny import tiny_resources
from curatornet_pipeline_tests.support.sources import run_requests, tick, write_ugallery_folder

REPO = Path(__file__).resolve().parents[2]
GALLERY = "demo_gallery_tiny_seed7"
# Tables a refresh must leave exactly as the last full run wrote them.
TRAINING_TABLES = [
    "model.curatornet_models",
    "model.item_embeddings",
    "model.user_vectors",
    "evaluation.metric_table",
    "evaluation.recommendations",
    "features.visual_clusters",
    "triplets.training_triplets",
]


@pytest.fixture()
def copied(materialized, tmp_path) -> Path:
    """A private copy of the session's pipeline output (DuckDB file, demo gallery, snapshot)."""
    data_dir = tmp_path / "data"
    shutil.copytree(materialized.data_dir, data_dir)
    return data_dir


def _fingerprints(database: Path) -> dict:
    with duckdb.connect(str(database), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*), sum(hash(t)) FROM {t} t").fetchone() for t in TRAINING_TABLES}


def _served(database: Path, table: str) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"SELECT * FROM serving.{table}").df()


def _refresh(data_dir: Path) -> dg.ExecuteInProcessResult:
    defs = build_definitions(tiny_resources(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        return refresh_serving(defs, instance=instance, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_a_new_purchase_reaches_everyone_through_curatornet_refresh(copied):
    database = copied / "curatornet.duckdb"
    before = _fingerprints(database)
    catalogue = _served(database, "catalogue")
    recs = _served(database, "user_recommendations")
    # A one-of-a-kind work nobody bought yet that the gallery is recommending, and a customer to buy it.
    never_bought = set(catalogue.loc[catalogue["n_purchases"] == 0, "artwork_id"])
    popular = recs[recs["artwork_id"].isin(never_bought)].groupby("artwork_id").size().sort_values()
    bought = popular.index[-1]
    buyer = sorted(recs.loc[recs["artwork_id"] == bought, "user_id"])[0]
    buyer_before = recs.loc[recs["user_id"] == buyer].sort_values("rank")["artwork_id"].tolist()
    with (copied / GALLERY / "purchases.csv").open("a") as handle:
        handle.write(f"{buyer},2100000000,\"['{bought}']\"\n")

    env = {**os.environ, "CURATORNET_DATA_DIR": str(copied), "CURATORNET_DEMO_SCALE": "tiny"}
    # Its own instance: unset, the CLI would record the run in the checkout's .dagster_home.
    env["DAGSTER_HOME"] = str(make_dagster_home(copied / "dagster_home"))
    env.pop("CURATORNET_DUCKDB_PATH", None)
    done = subprocess.run(
        [sys.executable, "-m", "curatornet_pipeline.cli", "refresh"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout

    after = _served(database, "user_recommendations")
    assert bought not in set(after["artwork_id"])
    assert bought not in set(_served(database, "available_artworks")["artwork_id"])
    buyer_after = after.loc[after["user_id"] == buyer].sort_values("rank")["artwork_id"].tolist()
    assert buyer_after != buyer_before
    assert _fingerprints(database) == before  # no retraining, evaluation untouched
    snapshot = load_snapshot(snapshot_path(database))
    assert bought not in set(snapshot.user_recommendations["artwork_id"])


def test_only_new_images_are_embedded_and_new_artworks_are_served(copied):
    gallery = copied / GALLERY
    database = copied / "curatornet.duckdb"
    unchanged = _refresh(copied)
    assert _metadata(unchanged, "serving_embeddings")["n_embedded_now"] == 0
    assert _metadata(unchanged, "serving_item_vectors")["n_computed_now"] == 0

    inventory = pd.read_csv(gallery / "inventory.csv")
    artist = inventory["artist_id_hash"].iloc[0]
    with (gallery / "inventory.csv").open("a") as handle:
        handle.write(f"zz_new_upload,{artist},2100000000\n")
    source = sorted((gallery / "images").iterdir())[0]
    with Image.open(source) as image:
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(gallery / "images" / "zz_new_upload.png")
    with (gallery / "likes.csv").open("w") as handle:
        handle.write("visitor_id,artwork_id,timestamp\n")
        for artwork_id in inventory["artwork_id_hash"].head(3):
            handle.write(f"visitor_abc,{artwork_id},2024-05-01T10:00:00Z\n")

    result = _refresh(copied)
    assert _metadata(result, "serving_embeddings")["n_embedded_now"] == 1
    assert _metadata(result, "serving_item_vectors")["n_computed_now"] == 1
    assert "zz_new_upload" in set(_served(database, "available_artworks")["artwork_id"])
    assert "zz_new_upload" in set(_served(database, "similar_artworks")["artwork_id"])
    visitor = _served(database, "user_recommendations").query("user_id == 'visitor_abc'")
    assert len(visitor) > 0
    assert not set(visitor["artwork_id"]) & set(inventory["artwork_id_hash"].head(3))


def test_a_like_is_a_change_the_sensor_turns_into_a_fast_refresh(tmp_path):
    folder = write_ugallery_folder(tmp_path / "gallery")
    source = GallerySource(source=str(folder))
    with dg.DagsterInstance.ephemeral() as instance:
        first = tick(source, instance)
        (folder / "likes.csv").write_text("visitor_id,artwork_id,timestamp\nv1,a1,2024-01-01T00:00:00Z\n")
        [request] = run_requests(tick(source, instance, cursor=first.cursor))
    assert request.tags["curatornet/trigger"] == "source_files_sensor"


def test_garbage_typed_into_likes_csv_is_set_aside_and_the_refresh_goes_on(copied):
    """Bad feedback lines never stop the fast path: counted, kept with file/line/reason, warned about."""
    database = copied / "curatornet.duckdb"
    ids = _served(database, "catalogue")["artwork_id"].tolist()
    (copied / GALLERY / "likes.csv").write_bytes(
        b"visitor_id,artwork_id,timestamp\n"
        + f"visitor_good,{ids[0]},2024-05-01T10:00:00Z\n".encode()
        + b"typed by hand\n"
        + b"visitor_bad,no_such_artwork,2024-05-01T10:00:00Z\n"
        + b"visitor_bad,caf\xe9,2024-05-01T10:00:00Z\n"
        + f"visitor_good,{ids[1]},yesterday\n".encode()
        + f"visitor_good,{ids[2]},2024-05-02T10:00:00Z\n".encode()
    )
    defs = build_definitions(tiny_resources(copied))
    with dg.DagsterInstance.ephemeral() as instance:
        result = refresh_serving(
            defs, instance=instance, run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        )
        warnings = [
            entry.user_message for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING and "likes.csv" in entry.user_message
        ]
    assert result.success
    assert warnings and "4 line(s) of likes.csv set aside" in warnings[0]
    assert _metadata(result, "served_interactions")["n_likes_set_aside"] == 4
    [check] = [
        e.asset_check_evaluation_data for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "every_like_line_is_used"
    ]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["lines_set_aside"].value == 4
    assert "typed by hand" not in str(_metadata(result, "served_interactions")["likes_set_aside"])  # reasons only
    aside = _served(database, "set_aside_likes").sort_values("line")
    assert aside["line"].tolist() == [3, 4, 5, 6] and set(aside["file"]) == {"likes.csv"}
    assert "expected 3 fields" in aside["reason"].iloc[0] and "not in the catalogue" in aside["reason"].iloc[1]
    assert "not UTF-8" in aside["reason"].iloc[2] and "timestamp" in aside["reason"].iloc[3]
    assert aside["text"].iloc[0] == "typed by hand"
    liked = _served(database, "interactions").query("user_id == 'visitor_good'")["artwork_id"].tolist()
    assert liked == [ids[0], ids[2]]
    assert len(_served(database, "user_recommendations").query("user_id == 'visitor_good'")) > 0
