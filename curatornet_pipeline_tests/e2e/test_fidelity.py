"""Reproducing the paper from the authors' files (issue 19): what the real graph does with them.

The whole-graph run of the session fixture is reused where it suffices; the authors' layouts (extra embedding
rows, a ``.dump()`` file, ``clusters.json``, published test baskets) are built in temporary folders from the tiny
demo gallery and run through the real job.
"""

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np

from curatornet_pipeline import tables
from curatornet_pipeline.checks.triplets import _test_rows_in_sampler_inputs
from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB
from curatornet_pipeline.resources import CuratorDuckDB
from curatornet_pipeline.storage import read_vectors
from curatornet_pipeline_tests.support.npy import save_embeddings_npy
from curatornet_pipeline_tests.support.tiny import tiny_resources, tiny_run_config
from curatornet_pipeline_tests.support.datastore import copy_database, edit_table


def _check_results(result: dg.ExecuteInProcessResult) -> dict:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def _failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """Every failed step's error, its cause chain included (Dagster wraps the user's exception)."""
    messages = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            while error is not None:
                messages.append(error.message)
                error = error.cause
    return messages


def test_sampler_inputs_hold_no_test_row_and_the_check_catches_one(materialized, tmp_path):
    checks = _check_results(materialized.result)
    for name in ("sampler_inputs_hold_no_test_rows", "random_sampler_inputs_hold_no_test_rows"):
        assert checks[name].passed
        metadata = {k: v.value for k, v in checks[name].metadata.items()}
        assert metadata["rows_read"] > 0 and metadata["non_training_rows_read"] == 0
        assert metadata["history_items_held_out"] == 0
    # A split that labelled a held-out row "train" as well would put it into a training history: caught.
    copy = tmp_path / "tampered.duckdb"
    copy_database(materialized.database, copy)
    edit_table(
        copy,
        tables.LAST_BASKET_SPLIT.name,
        f"INSERT INTO {tables.LAST_BASKET_SPLIT} "
        f"SELECT * REPLACE ('train' AS split) FROM {tables.LAST_BASKET_SPLIT} WHERE split = 'test' LIMIT 1",
    )
    found = _test_rows_in_sampler_inputs(CuratorDuckDB(database=str(copy)))
    assert found["history_items_held_out"] == 1


AUTHORS_LAYOUT_KEYS = [
    "source_files",
    "raw_artworks",
    "raw_transactions",
    "resnet50_embeddings",
    "last_basket_split",
    "visual_clusters",
    "triplets",
]


def _authors_folder(materialized, folder: Path) -> dict:
    """The tiny demo gallery rewritten in the authors' layout: a ``.dump()`` embeddings file with rows for
    artworks outside the catalogue, their ``clusters.json`` and a ``test_baskets.csv``. Returns what was written."""
    shutil.copytree(materialized.data_dir / "demo_gallery_tiny_seed7", folder)
    shutil.rmtree(folder / "images")  # embeddings come from the file only
    with duckdb.connect(str(materialized.database), read_only=True) as con:
        ids = con.execute(f"SELECT artwork_id FROM {tables.RESNET50_EMBEDDINGS} ORDER BY artwork_idx").df()
        vectors = read_vectors(con, f"SELECT embedding FROM {tables.RESNET50_EMBEDDINGS} ORDER BY artwork_idx", "embedding")
        clusters = con.execute(f"SELECT artwork_id, cluster FROM {tables.VISUAL_CLUSTERS}").df()
        split = con.execute(f"SELECT user_id, basket_id, artwork_id FROM {tables.LAST_BASKET_SPLIT}").df()
    extra = [f"sold_elsewhere_{i}" for i in range(7)]
    rng = np.random.default_rng(0)
    all_ids = ids["artwork_id"].tolist() + extra
    all_vectors = np.vstack([vectors, rng.normal(size=(len(extra), vectors.shape[1])).astype(np.float32)])
    order = rng.permutation(len(all_ids))
    save_embeddings_npy(folder / "resnet_embeddings.npy", [all_ids[i] for i in order], all_vectors[order], form="dump")
    # Cluster labels as the authors number them (any integers): a relabelling of ours, plus an unknown artwork.
    given = {a: int(c) * 7 + 3 for a, c in zip(clusters["artwork_id"], clusters["cluster"])} | {extra[0]: 5}
    (folder / "clusters.json").write_text(json.dumps(given))
    # Held out: the FIRST basket of every user with three or more baskets (the last-basket rule would differ).
    firsts = split.groupby("user_id")["basket_id"].agg(["min", "nunique"])
    chosen = firsts[firsts["nunique"] >= 3]["min"]
    held = split[split["basket_id"].isin(chosen)][["user_id", "artwork_id"]].drop_duplicates()
    held.to_csv(folder / "test_baskets.csv", index=False)
    return {"extra": extra, "given": given, "held": held, "vectors": dict(zip(ids["artwork_id"], vectors))}


def test_the_authors_files_as_they_are_run_through_the_real_graph(materialized, tmp_path):
    written = _authors_folder(materialized, tmp_path / "authors")
    assert len(written["held"]) > 0
    defs = build_definitions(tiny_resources(tmp_path / "data", source=str(tmp_path / "authors")))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(FULL_REFRESH_JOB).execute_in_process(
            instance=instance,
            run_config=tiny_run_config(),
            tags=ALL_STRATEGIES_TAGS,
            asset_selection=[dg.AssetKey(k) for k in AUTHORS_LAYOUT_KEYS],
        )
    assert result.success
    metadata = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    embeddings = metadata["resnet50_embeddings"]
    assert embeddings["embeddings_file_form"] == "bare pickle (ndarray.dump)"
    assert embeddings["embedding_rows_dropped"] == 7
    assert "7 embedding rows belong to artworks not in the catalogue" in embeddings["embedding_rows_dropped_note"]
    assert "sold_elsewhere_0" in embeddings["embedding_rows_dropped_note"]
    assert metadata["visual_clusters"]["clusters_source"].startswith("file ")
    assert metadata["visual_clusters"]["clusters_file_ids_ignored"] == 1
    assert metadata["last_basket_split"]["test_set"].endswith("test_baskets.csv")
    checks = _check_results(result)
    assert checks["clusters_cover_catalogue"].passed
    assert checks["sampler_inputs_hold_no_test_rows"].passed
    assert checks["triplets_follow_strategy_rules"].passed

    database = tmp_path / "data" / "curatornet.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        stored = con.execute(f"SELECT artwork_id, cluster FROM {tables.VISUAL_CLUSTERS}").df()
        test = con.execute(f"SELECT user_id, artwork_id FROM {tables.LAST_BASKET_SPLIT} WHERE split = 'test'").df()
        ids = con.execute(f"SELECT artwork_id FROM {tables.RESNET50_EMBEDDINGS} ORDER BY artwork_idx").df()
        vectors = read_vectors(con, f"SELECT embedding FROM {tables.RESNET50_EMBEDDINGS} ORDER BY artwork_idx", "embedding")
    # The same partition as the file's (renumbered densely), every artwork covered.
    pairs = set(zip(stored["cluster"], (written["given"][a] for a in stored["artwork_id"])))
    assert len(pairs) == stored["cluster"].nunique() == len({written["given"][a] for a in stored["artwork_id"]})
    # Exactly the listed baskets are held out.
    assert set(map(tuple, test.to_numpy())) == set(map(tuple, written["held"].to_numpy()))
    for artwork_id, vector in zip(ids["artwork_id"], vectors):
        np.testing.assert_array_equal(vector, written["vectors"][artwork_id])


def test_a_clusters_file_that_misses_artworks_or_a_test_basket_not_bought_fails_naming_the_file(materialized, tmp_path):
    written = _authors_folder(materialized, tmp_path / "authors")
    folder = tmp_path / "authors"
    given = dict(written["given"])
    missing = sorted(given)[0]
    del given[missing]
    (folder / "clusters.json").write_text(json.dumps(given))
    (folder / "test_baskets.csv").write_text("user_id,artwork_id\nnobody,x\n")
    defs = build_definitions(tiny_resources(tmp_path / "data", source=str(folder)))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(FULL_REFRESH_JOB).execute_in_process(
            instance=instance,
            run_config=tiny_run_config(),
            tags=ALL_STRATEGIES_TAGS,
            asset_selection=[dg.AssetKey(k) for k in AUTHORS_LAYOUT_KEYS[:-1]],
            raise_on_error=False,
        )
    assert not result.success
    messages = " ".join(_failure_messages(result))
    assert "clusters.json" in messages and "1 catalogue artworks have no cluster" in messages
    assert "test_baskets.csv" in messages and "data row 1: user 'nobody' has no purchase" in messages
