"""The `curatornet` command, run as a user runs it."""

import os
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from PIL import Image

from curatornet_pipeline.cli import main
from curatornet_pipeline.jobs import SERVING_REFRESH_JOB
from curatornet_pipeline.serving import recommend_for_items
from curatornet_pipeline_tests.support.processes import make_dagster_home
from curatornet_pipeline_tests.support.datastore import copy_database, edit_table



def _some_artworks(database: Path, n: int) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as con:
        return [r[0] for r in con.execute(f"SELECT artwork_id FROM ingest.raw_artworks ORDER BY artwork_idx LIMIT {n}").fetchall()]


def test_recommend_prints_top_k_excluding_the_profile(materialized, capsys):
    liked = _some_artworks(materialized.database, 3)
    code = main(["recommend", "--items", ",".join(liked), "--k", "5", "--database", str(materialized.database)])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| ") and "artwork_id" not in line]
    assert len(rows) == 5
    recommended = [line.split("|")[2].strip() for line in rows]
    assert not set(recommended) & set(liked)


def test_recommend_function_matches_the_command_and_loads_without_training(materialized):
    liked = _some_artworks(materialized.database, 2)
    first, model_id = recommend_for_items(materialized.database, liked, k=10)
    second, _ = recommend_for_items(materialized.database, liked, k=10, model_id=model_id)
    pd.testing.assert_frame_equal(first, second)
    assert model_id.startswith("curatornet_six_strategies")
    assert list(first["rank"]) == list(range(1, 11))
    assert first["score"].is_monotonic_decreasing


def test_recommend_unknown_id_is_a_clear_error(materialized, capsys):
    code = main(["recommend", "--items", "no_such_artwork", "--database", str(materialized.database)])
    assert code == 2
    assert "no_such_artwork" in capsys.readouterr().err


def test_recommend_writes_a_picture(materialized, tmp_path):
    liked = _some_artworks(materialized.database, 2)
    picture = tmp_path / "new_user.png"
    code = main(
        ["recommend", "--items", ",".join(liked), "--k", "4", "--database", str(materialized.database),
         "--picture", str(picture), "--gallery", str(materialized.data_dir / "demo_gallery_tiny_seed7")]
    )
    assert code == 0
    with Image.open(picture) as image:
        assert image.width > 200


def test_metrics_command_prints_the_table(materialized, capsys):
    assert main(["metrics", "--database", str(materialized.database)]) == 0
    out = capsys.readouterr().out
    assert "| Oracle |" in out and "VisRank" in out


def test_item_vectors_of_older_weights_are_refused(materialized, tmp_path):
    """If the model was retrained but item_embeddings was not, serving must not mix new weights with old vectors."""
    import pytest

    database = tmp_path / "copy.duckdb"
    copy_database(materialized.database, database)
    edit_table(
        database, "model.curatornet_models", "UPDATE model.curatornet_models SET run_id = 'a-newer-training-run'"
    )
    with pytest.raises(RuntimeError, match="re-materialize item_embeddings"):
        recommend_for_items(database, _some_artworks(database, 2), k=5)


def test_materialize_rejects_a_config_that_is_not_a_mapping(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CURATORNET_DATA_DIR", str(tmp_path / "data"))  # its log file goes there
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    assert main(["materialize", "--config", str(bad)]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_without_dagster_home_runs_go_to_the_project_instance_next_to_the_data_folder(
    materialized, tmp_path, capsys, monkeypatch
):
    """`.venv/bin/curatornet refresh` outside `make` records its run where `make ui` looks, not in a temporary one."""
    project = tmp_path / "project"
    home = make_dagster_home(project / ".dagster_home")  # the layout of a checkout: data/ next to .dagster_home/
    (project / "data").mkdir()
    copy_database(materialized.database, project / "data" / "curatornet.duckdb")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("CURATORNET_DUCKDB_PATH", raising=False)
    monkeypatch.setenv("CURATORNET_DATA_DIR", str(project / "data"))
    monkeypatch.setenv("CURATORNET_SOURCE", str(materialized.data_dir / "demo_gallery_tiny_seed7"))

    assert main(["refresh"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"instance: {home} (the project's instance; set DAGSTER_HOME to use another)"
    assert "DAGSTER_HOME" not in os.environ  # put back for whoever called main()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
    assert run.job_name == SERVING_REFRESH_JOB and run.is_success and run.run_id in out

    # DAGSTER_HOME wins when set.
    other = make_dagster_home(tmp_path / "other_home")
    monkeypatch.setenv("DAGSTER_HOME", str(other))
    assert main(["doctor", "--database", str(project / "data" / "curatornet.duckdb")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"instance: {other} (DAGSTER_HOME is set)"
