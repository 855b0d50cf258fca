"""The other two sources through the real assets, and bad input that fails cleanly without damage.

Each test builds a source folder from the tiny demo gallery that the session fixture generated, points the
``gallery`` resource at it (the one setting a user changes), and materializes through the real job.
"""

import ast
import csv
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB
from curatornet_pipeline_tests.support.npy import save_embeddings_npy
from curatornet_pipeline_tests.support.sources import failure_message
from curatornet_pipeline_tests.support.tiny import tiny_resources, tiny_run_config

INGEST = ["source_files", "raw_artworks", "raw_transactions"]
THROUGH_SPLIT = [*INGEST, "resnet50_embeddings", "last_basket_split"]


def _run(data_dir: Path, source: Path, keys: list[str], weights: str = "random") -> dg.ExecuteInProcessResult:
    defs = build_definitions(tiny_resources(data_dir, source=str(source)))
    with dg.DagsterInstance.ephemeral() as instance:
        return defs.resolve_job_def(FULL_REFRESH_JOB).execute_in_process(
            instance=instance,
            run_config=tiny_run_config(resnet50_embeddings={"weights": weights}),
            tags=ALL_STRATEGIES_TAGS,
            asset_selection=[dg.AssetKey(k) for k in keys],
            raise_on_error=False,
        )


def _count(database: Path, table: str) -> int:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def ugallery_copy(materialized, tmp_path) -> Path:
    folder = tmp_path / "ugallery"
    shutil.copytree(materialized.data_dir / "demo_gallery_tiny_seed7", folder)
    return folder


def test_bad_basket_fails_naming_file_row_and_leaves_tables_intact(ugallery_copy, tmp_path):
    data_dir = tmp_path / "data"
    assert _run(data_dir, ugallery_copy, INGEST).success
    database = data_dir / "curatornet.duckdb"
    before = _count(database, "ingest.raw_transactions")

    with open(ugallery_copy / "purchases.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(["someone", "1500000000", "['a1', 'b2'"])
    result = _run(data_dir, ugallery_copy, INGEST)
    assert not result.success
    message = failure_message(result)
    assert "purchases.csv" in message and "row" in message and "['a1', 'b2'" in message
    assert _count(database, "ingest.raw_transactions") == before


def test_unknown_artwork_in_a_purchase_is_named(ugallery_copy, tmp_path):
    with open(ugallery_copy / "purchases.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(["someone", "1500000000", "['not_in_catalogue']"])
    result = _run(tmp_path / "data", ugallery_copy, INGEST)
    assert not result.success
    message = failure_message(result)
    assert "purchases.csv" in message and "not_in_catalogue" in message


def test_undecodable_image_fails_naming_the_file(ugallery_copy, tmp_path):
    image = sorted((ugallery_copy / "images").iterdir())[0]
    image.write_bytes(b"this is not a png")
    result = _run(tmp_path / "data", ugallery_copy, THROUGH_SPLIT)
    assert not result.success
    assert image.name in failure_message(result)


def test_truncated_image_stops_the_run_before_any_table_is_written(ugallery_copy, tmp_path):
    data_dir = tmp_path / "data"
    assert _run(data_dir, ugallery_copy, INGEST).success
    before = _count(data_dir / "curatornet.duckdb", "ingest.raw_transactions")
    (ugallery_copy / "purchases.csv").write_text(
        "".join((ugallery_copy / "purchases.csv").read_text().splitlines(keepends=True)[:-1])
    )
    # The header survives, so opening the file (what the pre-check did) still works; the pixels do not.
    image = sorted((ugallery_copy / "images").iterdir())[3]
    image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2])
    result = _run(data_dir, ugallery_copy, THROUGH_SPLIT)
    assert not result.success
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed == ["source_files"]
    assert image.name in failure_message(result)
    assert _count(data_dir / "curatornet.duckdb", "ingest.raw_transactions") == before


def test_image_link_leading_out_of_the_folder_is_refused(ugallery_copy, tmp_path):
    image = sorted((ugallery_copy / "images").iterdir())[0]
    secret = tmp_path / "outside.png"
    shutil.copy(image, secret)  # a decodable image, so only where the link leads is wrong
    image.unlink()
    image.symlink_to(secret)
    result = _run(tmp_path / "data", ugallery_copy, THROUGH_SPLIT)
    assert not result.success
    assert f"{image}: is a link to {secret}, outside the images folder" in failure_message(result)
    # A link that stays inside the folder is an ordinary image.
    image.unlink()
    shutil.move(secret, ugallery_copy / "images" / "original.png")
    image.symlink_to("original.png")
    assert _run(tmp_path / "data", ugallery_copy, THROUGH_SPLIT).success


def test_ugallery_folder_with_precomputed_embeddings(ugallery_copy, tmp_path):
    ids = sorted(row["artwork_id_hash"] for row in csv.DictReader(open(ugallery_copy / "inventory.csv")))
    vectors = np.random.default_rng(0).normal(size=(len(ids), 2048)).astype(np.float32)
    save_embeddings_npy(ugallery_copy / "resnet_embeddings.npy", ids, vectors)
    shutil.rmtree(ugallery_copy / "images")  # the published UGallery files come without images
    data_dir = tmp_path / "data"
    result = _run(data_dir, ugallery_copy, THROUGH_SPLIT)
    assert result.success
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        stored = np.stack(
            con.execute("SELECT embedding FROM features.resnet50_embeddings ORDER BY artwork_idx").fetchnumpy()["embedding"]
        )
    np.testing.assert_array_equal(stored, vectors)
    event = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["resnet50_embeddings"]][0]
    assert "resnet_embeddings.npy" in event.materialization.metadata["embedding_source"].value


def test_npy_with_nan_fails_naming_file_and_row(ugallery_copy, tmp_path):
    ids = sorted(row["artwork_id_hash"] for row in csv.DictReader(open(ugallery_copy / "inventory.csv")))
    rows = np.empty((len(ids), 2), dtype=object)  # written by hand: our own writer refuses NaN
    for i, artwork_id in enumerate(ids):
        rows[i, 0], rows[i, 1] = artwork_id, np.ones(2048, dtype=np.float32)
    rows[3, 1][7] = np.nan
    np.save(ugallery_copy / "resnet_embeddings.npy", rows, allow_pickle=True)
    result = _run(tmp_path / "data", ugallery_copy, THROUGH_SPLIT)
    assert not result.success
    message = failure_message(result)
    assert "resnet_embeddings.npy" in message and "3" in message


def test_generic_folder_with_own_images(ugallery_copy, tmp_path):
    """A user's own gallery: items.csv + interactions.csv + images/, one row per purchased item."""
    folder = tmp_path / "generic"
    folder.mkdir()
    shutil.copytree(ugallery_copy / "images", folder / "images")
    inventory = pd.read_csv(ugallery_copy / "inventory.csv", dtype=str)
    inventory.rename(columns={"artwork_id_hash": "item_id", "artist_id_hash": "artist_id"})[
        ["item_id", "artist_id", "upload_timestamp"]
    ].to_csv(folder / "items.csv", index=False)
    purchases = pd.read_csv(ugallery_copy / "purchases.csv", dtype=str)
    rows = [
        {"user_id": p.user_id_hash, "item_id": item, "timestamp": p.purchase_timestamp}
        for p in purchases.itertuples()
        for item in ast.literal_eval(p.purchased_artwork_ids_hash)
    ]
    pd.DataFrame(rows).to_csv(folder / "interactions.csv", index=False)
    data_dir = tmp_path / "data"
    result = _run(data_dir, folder, THROUGH_SPLIT)
    assert result.success
    assert _count(data_dir / "curatornet.duckdb", "ingest.raw_transactions") == len(rows)
    assert _count(data_dir / "curatornet.duckdb", "features.resnet50_embeddings") == len(inventory)


def test_imagenet_weights_unavailable_says_how_to_use_a_local_file(ugallery_copy, tmp_path, monkeypatch):
    """Real folders default to ImageNet weights; with no network and no cache the error explains the fix."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    result = _run(tmp_path / "data", ugallery_copy, THROUGH_SPLIT, weights="imagenet")
    assert not result.success
    assert "local" in failure_message(result).lower()


def test_one_triplet_partition_materializes_alone(materialized, tmp_path):
    """A single strategy can be (re)sampled on its own; the other partitions' rows are left as they were."""
    data_dir = tmp_path / "data"
    source = materialized.data_dir / "demo_gallery_tiny_seed7"
    upstream = [*THROUGH_SPLIT, "visual_clusters"]
    assert _run(data_dir, source, upstream).success
    defs = build_definitions(tiny_resources(data_dir, source=str(source)))
    # As the triplets asset page's Materialize -> one partition does (the full-refresh job spans all six).
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        for strategy, budget in (("5_single_item", 600), ("2_next_basket", 600), ("5_single_item", 300)):
            result = job.execute_in_process(
                instance=instance,
                run_config=tiny_run_config(triplets={"total_train_triplets": budget}),
                partition_key=strategy,
                asset_selection=[dg.AssetKey("triplets")],
            )
            assert result.success
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        counts = dict(con.execute("SELECT strategy, count(*) FROM triplets.triplets WHERE split = 'train' GROUP BY 1").fetchall())
    assert set(counts) == {"5_single_item", "2_next_basket"}
    assert counts["5_single_item"] == 50  # the last run's budget: 300 / 6 strategies
    assert counts["2_next_basket"] <= 100


def test_ugallery_session_written_as_two_rows_is_held_out_together(ugallery_copy, tmp_path):
    """A user's last session split over two purchases rows with one timestamp: both rows are one held-out basket."""
    purchases = pd.read_csv(ugallery_copy / "purchases.csv", dtype=str)
    repeat_buyers = purchases.groupby("user_id_hash")["purchase_timestamp"].nunique()
    user = sorted(repeat_buyers[repeat_buyers >= 2].index)[0]
    mine = purchases[purchases["user_id_hash"] == user]
    last_time = max(mine["purchase_timestamp"], key=float)
    bought = {item for text in mine["purchased_artwork_ids_hash"] for item in ast.literal_eval(text)}
    catalogue = pd.read_csv(ugallery_copy / "inventory.csv", dtype=str)["artwork_id_hash"]
    extra = sorted(set(catalogue) - bought)[0]
    with open(ugallery_copy / "purchases.csv", "a", newline="") as handle:
        csv.writer(handle).writerow([user, last_time, str([extra])])
    data_dir = tmp_path / "data"
    result = _run(data_dir, ugallery_copy, [*INGEST, "last_basket_split"])
    assert result.success
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["one_basket_per_user_and_time"]
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT artwork_id, basket_id, split FROM split.last_basket_split WHERE user_id = ?", [user]
        ).df()
    last_rows = mine.loc[mine["purchase_timestamp"] == last_time, "purchased_artwork_ids_hash"]
    last_items = {extra} | {item for text in last_rows for item in ast.literal_eval(text)}
    held_out = rows[rows["split"] == "test"]
    assert set(held_out["artwork_id"]) == last_items
    assert held_out["basket_id"].nunique() == 1
    assert not (set(rows.loc[rows["split"] == "train", "artwork_id"]) & last_items)
