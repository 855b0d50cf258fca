"""Readers while another process holds the catalog, damaged table files, a damaged catalog, foreign DuckDB files,
a tampered model, missing images, artwork ids with commas: each gives an answer or one clear sentence, never a
traceback."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import torch
import yaml
from PIL import Image

from curatornet_pipeline import tables
from curatornet_pipeline.cli import main
from curatornet_pipeline.duckdb_file import DatabaseFileError
from curatornet_pipeline.store import session
from curatornet_pipeline_tests.support.damage import cut_table_file, overwrite_table_files
from curatornet_pipeline_tests.support.processes import make_dagster_home
from curatornet_pipeline_tests.support.tiny import TINY_OPS_CONFIG
from curatornet_pipeline_tests.support.datastore import copy_database, edit_table

HOLD_WRITE_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # read-write: DuckDB locks the file against every other process
con.execute("CREATE OR REPLACE TABLE main.writer_was_here AS SELECT 1 AS x")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_write_lock(database: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(database), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.fixture
def database_copy(materialized, tmp_path) -> Path:
    copy = tmp_path / "copy.duckdb"
    copy_database(materialized.database, copy)
    return copy


def some_artworks(database: Path, n: int) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(f"SELECT artwork_id FROM ingest.raw_artworks ORDER BY artwork_idx LIMIT {n}").fetchall()
    return [r[0] for r in rows]


def assert_one_sentence(err: str, *needles: str, run_command: bool = False) -> None:
    """One ``error:`` line; a run command (materialize, refresh) adds exactly one line naming its log file."""
    lines = [line for line in err.splitlines() if line.strip()]
    if run_command:
        assert len(lines) == 2 and lines[1].startswith("full log: "), err
        lines = lines[:1]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


# --- a process holds the catalog file --------------------------------------------------------------------------


def test_readers_do_not_wait_for_a_process_holding_the_catalog_file(database_copy, capsys):
    """Readers open the tables through the data layer, so a process holding the catalog file delays nothing."""
    liked = some_artworks(database_copy, 2)
    holder = hold_write_lock(database_copy, seconds=60.0)
    try:
        started = time.monotonic()
        assert main(["metrics", "--database", str(database_copy), "--wait", "60"]) == 0
        assert "| Oracle |" in capsys.readouterr().out
        assert main(["recommend", "--items", ",".join(liked), "--k", "3", "--database", str(database_copy)]) == 0
        assert "top 3" in capsys.readouterr().out
        assert time.monotonic() - started < 30  # far less than the holder's minute
        assert holder.poll() is None  # still holding the file
    finally:
        holder.kill()
        holder.wait(timeout=30)


# --- damaged and foreign files ------------------------------------------------------------------------


def _manifest_bytes(database: Path) -> bytes:
    return session.Location.of(database).root.manifest_path.read_bytes()


def test_a_table_file_cut_to_half_is_detected_by_every_command(database_copy, capsys, monkeypatch, tmp_path):
    cut = cut_table_file(database_copy, tables.METRIC_TABLE.name)
    cut_table_file(database_copy, tables.CURATORNET_MODELS.name)
    before = _manifest_bytes(database_copy)

    assert main(["metrics", "--database", str(database_copy)]) == 2
    assert_one_sentence(capsys.readouterr().err, str(database_copy), str(cut), "damaged", "mv ")
    assert main(["recommend", "--items", "a", "--database", str(database_copy)]) == 2
    assert "damaged" in capsys.readouterr().err
    assert main(["doctor", "--database", str(database_copy)]) == 1
    assert "damaged" in capsys.readouterr().out

    # materialize refuses before writing anything (it would rewrite upstream tables, then fail at a lost file)
    monkeypatch.setenv("CURATORNET_DUCKDB_PATH", str(database_copy))
    monkeypatch.setenv("CURATORNET_DATA_DIR", str(tmp_path / "data"))
    # An empty instance of its own: unset, the CLI would fall back to the checkout's .dagster_home and its runs.
    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path / "empty_home")))
    assert main(["materialize"]) == 2
    assert_one_sentence(capsys.readouterr().err, "damaged", "curatornet materialize", run_command=True)
    assert _manifest_bytes(database_copy) == before


def all_tables(database: Path) -> list[str]:
    return sorted(session.Location.of(database).root.read_manifest().tables)


def test_overwritten_table_files_are_found_by_doctor_and_explained_by_every_command(database_copy, capsys):
    liked = some_artworks(database_copy, 2)
    overwrite_table_files(database_copy, [tables.METRIC_TABLE.name])

    assert main(["doctor", "--database", str(database_copy)]) == 1
    report = capsys.readouterr().out
    assert f"the tables of {database_copy} are damaged: table {tables.METRIC_TABLE.name} cannot be read (" in report
    assert "curatornet materialize" in report and "is whole" not in report

    assert main(["metrics", "--database", str(database_copy)]) == 2
    assert_one_sentence(capsys.readouterr().err, str(database_copy), "are damaged", ".parquet", "mv ")

    overwrite_table_files(database_copy, all_tables(database_copy))
    assert main(["recommend", "--items", ",".join(liked), "--database", str(database_copy)]) == 2
    assert_one_sentence(capsys.readouterr().err, str(database_copy), "are damaged", "curatornet materialize")


def test_a_damaged_catalog_file_stops_no_reader_and_doctor_rebuilds_it(database_copy, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path / "empty_home")))
    with database_copy.open("r+b") as handle:  # the catalog holds views only: the tables are elsewhere
        handle.truncate(database_copy.stat().st_size // 2)
    assert main(["metrics", "--database", str(database_copy)]) == 0
    assert "| Oracle |" in capsys.readouterr().out

    assert main(["doctor", "--database", str(database_copy)]) == 0
    report = capsys.readouterr().out
    assert f"the catalog file {database_copy} could not be opened" in report and "rebuilt it" in report
    assert "is whole" in report
    with duckdb.connect(str(database_copy), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {tables.METRIC_TABLE}").fetchone()[0] > 0


@pytest.mark.slow
def test_materialize_and_refresh_refuse_a_damaged_table_and_materialize_rebuilds_it(
    materialized, tmp_path, capsys, monkeypatch
):
    database = tmp_path / "data" / "curatornet.duckdb"
    database.parent.mkdir()
    copy_database(materialized.database, database)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"ops": TINY_OPS_CONFIG}))
    monkeypatch.setenv("CURATORNET_DATA_DIR", str(database.parent))
    monkeypatch.setenv("CURATORNET_DEMO_SCALE", "tiny")
    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path / "home")))
    monkeypatch.delenv("CURATORNET_DUCKDB_PATH", raising=False)
    monkeypatch.delenv("CURATORNET_DATA_ROOT", raising=False)
    monkeypatch.delenv("CURATORNET_SOURCE", raising=False)
    overwrite_table_files(database, [tables.SERVING_CATALOGUE.name])
    before = _manifest_bytes(database)

    # Both refuse before writing anything: a refresh would rewrite serving tables, then meet the damage.
    for command in (["refresh"], ["materialize", "--config", str(config)]):
        assert main(command) == 2
        assert_one_sentence(
            capsys.readouterr().err, f"table {tables.SERVING_CATALOGUE.name} cannot be read", run_command=True
        )
        assert _manifest_bytes(database) == before

    # The recovery the sentence gives: move the data root aside, run a full materialize.
    root = session.Location.of(database).root.path
    root.rename(root.with_name(root.name + ".broken"))
    assert main(["materialize", "--config", str(config)]) == 0
    assert main(["doctor", "--database", str(database)]) == 0
    assert "is whole" in capsys.readouterr().out


def test_a_text_file_named_duckdb_is_one_sentence(tmp_path, capsys):
    fake = tmp_path / "notes.duckdb"
    fake.write_text("these are my notes, not a database\n" * 50)
    assert main(["metrics", "--database", str(fake)]) == 2
    assert_one_sentence(capsys.readouterr().err, str(fake), "not a valid DuckDB database")
    assert main(["recommend", "--items", "x", "--database", str(fake)]) == 2
    assert_one_sentence(capsys.readouterr().err, str(fake))


def test_debug_shows_the_traceback(tmp_path):
    fake = tmp_path / "notes.duckdb"
    fake.write_text("not a database")
    with pytest.raises(DatabaseFileError):
        main(["--debug", "metrics", "--database", str(fake)])


def test_a_tampered_model_blob_names_the_model_and_the_fix(database_copy, capsys):
    with duckdb.connect(str(database_copy), read_only=True) as con:
        model_id = con.execute(
            "SELECT model_id FROM model.curatornet_models WHERE variant = 'six_strategies' LIMIT 1"
        ).fetchone()[0]
    # A pickle that references a class outside torch's weights-only allow-list, as a tampered blob would.
    buffer = __import__("io").BytesIO()
    torch.save({"format": "curatornet", "payload": argparse.Namespace(run="code")}, buffer)
    edit_table(
        database_copy,
        "model.curatornet_models",
        "UPDATE model.curatornet_models SET weights = ? WHERE model_id = ?",
        params=[buffer.getvalue(), model_id],
    )
    liked = some_artworks(database_copy, 2)
    code = main(["recommend", "--items", ",".join(liked), "--model-id", model_id, "--database", str(database_copy)])
    assert code == 2
    err = capsys.readouterr().err
    assert_one_sentence(err, model_id, "rematerialize the model")
    assert "weights_only" not in err


# --- pictures and ids -----------------------------------------------------------------------------------


def test_picture_finds_the_gallery_of_the_database_without_gallery_flag(materialized, tmp_path, capsys, monkeypatch):
    # An empty instance of its own: unset, the CLI would fall back to the checkout's .dagster_home and its runs.
    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path / "empty_home")))
    monkeypatch.setenv("CURATORNET_DATA_DIR", str(tmp_path / "elsewhere"))  # the configured demo folder is empty
    liked = some_artworks(materialized.database, 2)
    picture = tmp_path / "sheet.png"
    args = ["recommend", "--items", ",".join(liked), "--k", "3", "--database", str(materialized.database)]
    assert main([*args, "--picture", str(picture)]) == 0
    with Image.open(picture) as image:
        assert image.width > 200


def test_picture_uses_a_folder_source_and_says_when_images_are_missing(materialized, tmp_path, capsys, monkeypatch):
    # An empty instance of its own: unset, the CLI would fall back to the checkout's .dagster_home and its runs.
    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path / "empty_home")))
    database = tmp_path / "alone" / "curatornet.duckdb"  # no demo gallery next to it
    database.parent.mkdir()
    copy_database(materialized.database, database)
    source = tmp_path / "my_gallery"
    shutil.copytree(materialized.data_dir / "demo_gallery_tiny_seed7", source)
    monkeypatch.setenv("CURATORNET_SOURCE", str(source))
    liked = some_artworks(database, 2)
    args = ["recommend", "--items", ",".join(liked), "--k", "3", "--database", str(database)]
    assert main([*args, "--picture", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").exists()

    shutil.rmtree(source / "images")
    assert main([*args, "--picture", str(tmp_path / "b.png")]) == 2
    assert_one_sentence(capsys.readouterr().err, str(source / "images"), "--gallery")
    assert not (tmp_path / "b.png").exists()


def test_artwork_ids_with_commas_via_repeated_item_flags_and_a_file(database_copy, tmp_path, capsys):
    with duckdb.connect(str(database_copy), read_only=True) as con:
        first = con.execute("SELECT artwork_id FROM model.item_embeddings ORDER BY artwork_idx LIMIT 1").fetchone()[0]
    for table in ("model.item_embeddings", "serving.item_vectors"):  # the serving model reads the latter
        edit_table(
            database_copy, table, f"UPDATE {table} SET artwork_id = 'Smith, J. (1990)' WHERE artwork_id = ?", params=[first]
        )
    second = some_artworks(database_copy, 2)[1]
    base = ["recommend", "--k", "4", "--database", str(database_copy)]

    assert main([*base, "--item", "Smith, J. (1990)", "--item", second]) == 0
    by_flags = capsys.readouterr().out
    assert "profile of 2 artworks" in by_flags and "Smith, J. (1990)" not in by_flags.split("\n", 1)[1]

    ids_file = tmp_path / "liked.txt"
    ids_file.write_text(f"Smith, J. (1990)\n\n{second}\n", encoding="utf-8")
    assert main([*base, "--items-file", str(ids_file)]) == 0
    assert capsys.readouterr().out == by_flags

    # --items still splits on commas, so the same id there is two unknown ids.
    assert main([*base, "--items", "Smith, J. (1990)"]) == 2
    assert "Smith" in capsys.readouterr().err


def test_doctor_on_a_whole_file_and_no_instance(database_copy, tmp_path, capsys, monkeypatch):
    # An empty instance of its own: unset, the CLI would fall back to the checkout's .dagster_home and its runs.
    monkeypatch.setenv("DAGSTER_HOME", str(make_dagster_home(tmp_path / "empty_home")))
    assert main(["doctor", "--database", str(database_copy)]) == 0
    assert "is whole" in capsys.readouterr().out

