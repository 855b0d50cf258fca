"""Every kind of bad input gives exactly one `error:` sentence and one line saying where the full log is.

`curatornet materialize` and `curatornet refresh` run the real jobs in-process (through ``main``) on a copy of
the session's tiny gallery and DuckDB file, against their own DAGSTER_HOME. Dagster's own output (stack
traces, the "Dependencies ... Not executing" lines) goes to the log file; stderr holds the two lines.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest
import yaml

from curatornet_pipeline import tables
from curatornet_pipeline.cli import main
from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.embeddings import load_embeddings_npy
from curatornet_pipeline.core.preflight import _check_images as check_images
from curatornet_pipeline_tests.e2e.test_readers_and_bad_files import hold_write_lock
from curatornet_pipeline_tests.support.damage import overwrite_table_files
from curatornet_pipeline_tests.support.processes import VENV_BIN, make_dagster_home, pipeline_env
from curatornet_pipeline_tests.support.tiny import TINY_OPS_CONFIG
from curatornet_pipeline_tests.support.datastore import copy_database


class Workspace:
    def __init__(self, root: Path, materialized) -> None:
        self.folder = root / "gallery"
        shutil.copytree(materialized.data_dir / "demo_gallery_tiny_seed7", self.folder)
        self.data_dir = root / "data"
        self.data_dir.mkdir()
        self.database = self.data_dir / "curatornet.duckdb"
        copy_database(materialized.database, self.database)
        self.home = make_dagster_home(root / "home")
        self.config = root / "tiny.yaml"
        ops = {op: {"config": dict(entry["config"])} for op, entry in TINY_OPS_CONFIG.items()}
        ops["resnet50_embeddings"]["config"]["weights"] = "random"  # as the session's run (no download)
        self.config.write_text(yaml.safe_dump({"ops": ops}))

    def command(self, name: str) -> list[str]:
        return [name, "--config", str(self.config)] if name == "materialize" else [name]


@pytest.fixture
def workspace(materialized, tmp_path, monkeypatch) -> Workspace:
    ws = Workspace(tmp_path, materialized)
    monkeypatch.setenv("DAGSTER_HOME", str(ws.home))
    monkeypatch.setenv("CURATORNET_DATA_DIR", str(ws.data_dir))
    monkeypatch.setenv("CURATORNET_SOURCE", str(ws.folder))
    monkeypatch.delenv("CURATORNET_DUCKDB_PATH", raising=False)
    monkeypatch.delenv("CURATORNET_DEBUG", raising=False)
    return ws


def assert_sentence_and_log_pointer(err: str, sentence: str, ws: Workspace) -> Path:
    """stderr is exactly ``error: <sentence>`` and the line naming the log file; returns that file."""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0] == f"error: {sentence}", err
    assert lines[1].startswith(f"full log: {ws.data_dir / 'logs'}/"), err
    log = Path(lines[1].removeprefix("full log: ").split(";")[0])
    assert log.is_file()
    return log


def append_purchase(ws: Workspace, row: str) -> int:
    """Append one data row to purchases.csv; returns its 1-based data row number."""
    path = ws.folder / "purchases.csv"
    text = path.read_text()
    path.write_text(text + row + "\n")
    return len(text.splitlines())  # the header is line 1, so the new line's data row is the old line count


def truncate_an_image(ws: Workspace) -> Path:
    image = sorted((ws.folder / "images").iterdir())[2]
    image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2])
    return image


def expected_preflight_error(call) -> str:
    with pytest.raises(InputDataError) as raised:
        call()
    return str(raised.value)


BAD_INPUTS = ["bad_csv_row", "unknown_id", "bad_embeddings_file", "truncated_image", "missing_source_folder"]


def make_bad_input(kind: str, ws: Workspace, monkeypatch) -> str:
    """Damage the workspace one way; return the exact sentence the user must see."""
    purchases = ws.folder / "purchases.csv"
    if kind == "bad_csv_row":
        row = append_purchase(ws, "someone,1500000000,\"['a1', 'b2'\"")
        return (
            f"{purchases}, row {row}, column 'purchased_artwork_ids_hash': row {row} (line {row + 1}): cannot parse "
            "basket \"['a1', 'b2'\" as a Python list of artwork ids (SyntaxError)"
        )
    if kind == "unknown_id":
        row = append_purchase(ws, "someone,1500000000,\"['nope']\"")
        return (
            f"{purchases}, row {row}, column 'purchased_artwork_ids_hash': row {row} (line {row + 1}): "
            "artwork id 'nope' is not in inventory.csv"
        )
    if kind == "bad_embeddings_file":
        npy = ws.folder / "resnet_embeddings.npy"
        np.save(npy, np.zeros((3, 5), dtype=np.float32))
        return expected_preflight_error(lambda: load_embeddings_npy(npy, ["a"]))
    if kind == "truncated_image":
        image = truncate_an_image(ws)
        return expected_preflight_error(lambda: check_images(ws.folder, [image.stem]))
    if kind == "missing_source_folder":
        missing = ws.folder.parent / "no_such_folder"
        monkeypatch.setenv("CURATORNET_SOURCE", str(missing))
        return (
            f"CURATORNET_SOURCE points at {missing}, which is not a folder: set it to 'demo' or to a folder "
            "holding inventory.csv + purchases.csv (UGallery) or items.csv + interactions.csv (generic)"
        )
    raise AssertionError(kind)


@pytest.mark.parametrize("command", ["materialize", "refresh"])
@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_is_one_sentence_and_exit_2(workspace, capsys, monkeypatch, command, kind):
    if command == "refresh" and kind == "bad_embeddings_file":
        pytest.skip("the fast path reads resnet_embeddings.npy only when the model was trained from it")
    sentence = make_bad_input(kind, workspace, monkeypatch)
    before = workspace.database.read_bytes()
    assert main(workspace.command(command)) == 2
    log = assert_sentence_and_log_pointer(capsys.readouterr().err, sentence, workspace)
    assert "STEP_FAILURE" in log.read_text() or "Traceback" in log.read_text()
    assert workspace.database.read_bytes() == before  # nothing was written


@pytest.mark.parametrize("command", ["materialize", "refresh"])
def test_a_damaged_table_file_is_one_sentence(workspace, capsys, command):
    overwrite_table_files(workspace.database, [tables.SERVING_CATALOGUE.name])
    assert main(workspace.command(command)) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[1].startswith("full log: "), err
    assert lines[0].startswith(
        f"error: the tables of {workspace.database} are damaged: table {tables.SERVING_CATALOGUE.name} cannot be "
        "read ("
    ), err
    assert ".parquet" in lines[0] and lines[0].endswith("to rebuild it from the source data"), err


def test_a_process_holding_the_catalog_file_does_not_block_a_refresh(workspace, capsys):
    """Runs replace the catalog file by a rename: a user (or a stuck tool) holding it open delays nothing."""
    holder = hold_write_lock(workspace.database, seconds=300.0)
    try:
        assert main(workspace.command("refresh")) == 0, capsys.readouterr().err
        assert holder.poll() is None  # it still holds the old file
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with duckdb.connect(str(workspace.database), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {tables.USER_RECOMMENDATIONS}").fetchone()[0] > 0


def test_an_internal_error_is_one_sentence_and_exit_1(workspace, capsys):
    # A training setting the model refuses fails inside a step: not bad input data, so exit status 1.
    config = yaml.safe_load(workspace.config.read_text())
    config["ops"]["curatornet_model"]["config"]["batch_size"] = 0
    workspace.config.write_text(yaml.safe_dump(config))
    assert main(workspace.command("materialize")) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[1].startswith("full log: "), lines
    assert lines[0].startswith("error: step curatornet_model failed with an internal error (ValueError: "), lines
    assert "batch_size must be >= 1" in lines[0]


def test_the_real_command_prints_two_lines_and_verbose_shows_the_rest(workspace, tmp_path):
    sentence = make_bad_input("unknown_id", workspace, None)
    env = pipeline_env(workspace.home, workspace.data_dir, CURATORNET_SOURCE=str(workspace.folder))
    command = [str(VENV_BIN / "curatornet"), *workspace.command("materialize")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert_sentence_and_log_pointer(done.stderr, sentence, workspace)
    assert done.stdout.splitlines()[0] == f"instance: {workspace.home} (DAGSTER_HOME is set)"

    verbose = subprocess.run([command[0], "--verbose", *command[1:]], env=env, capture_output=True, text=True, timeout=300)
    assert verbose.returncode != 0
    assert "Dependencies for step" in verbose.stderr and "Stack Trace" in verbose.stderr


def test_a_successful_run_shows_progress_and_keeps_dagster_output_in_the_log(workspace, capsys):
    assert main(["refresh"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "succeeded" in captured.out and f"instance: {workspace.home}" in captured.out
    logs = list((workspace.data_dir / "logs").glob("refresh-*.log"))
    assert len(logs) == 1 and logs[0].stat().st_size > 0
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_runs()) == 1
